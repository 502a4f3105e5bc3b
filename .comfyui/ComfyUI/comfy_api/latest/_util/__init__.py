from .video_types import VideoContainer, VideoCodec, VideoComponents
from .geometry_types import VOXEL, MESH

__all__ = [
    # Utility Types
    "VideoContainer",
    "VideoCodec",
    "VideoComponents",
    "VOXEL",
    "MESH",
]
