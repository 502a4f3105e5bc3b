"""People, for every family: faces found and encoded (faces.py), who goes where (router.py), how alike the video's
faces are to them (similarity.py)."""

from .faces import EncodeIdentity, LoadFaceExtractor
from .router import IDRouter
from .similarity import IdentitySimilarity

NODES = [LoadFaceExtractor, EncodeIdentity, IDRouter, IdentitySimilarity]
