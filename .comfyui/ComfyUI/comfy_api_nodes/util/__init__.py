from ._helpers import get_fs_object_size
from .client import (
    ApiEndpoint,
    poll_op,
    poll_op_raw,
    sync_op,
    sync_op_raw,
)
from .conversions import (
    audio_bytes_to_audio_input,
    audio_input_to_mp3,
    audio_to_base64_string,
    bytesio_to_image_tensor,
    downscale_image_tensor,
    image_tensor_pair_to_batch,
    pil_to_bytesio,
    resize_mask_to_image,
    tensor_to_base64_string,
    tensor_to_bytesio,
    tensor_to_pil,
    text_filepath_to_base64_string,
    text_filepath_to_data_uri,
    trim_video,
    video_to_base64_string,
)
from .download_helpers import (
    download_url_as_bytesio,
    download_url_to_bytesio,
    download_url_to_image_tensor,
    download_url_to_video_output,
)
from .upload_helpers import (
    upload_audio_to_comfyapi,
    upload_file_to_comfyapi,
    upload_images_to_comfyapi,
    upload_video_to_comfyapi,
)
from .validation_utils import (
    get_image_dimensions,
    get_number_of_images,
    validate_aspect_ratio_string,
    validate_audio_duration,
    validate_container_format_is_mp4,
    validate_image_aspect_ratio,
    validate_image_dimensions,
    validate_images_aspect_ratio_closeness,
    validate_string,
    validate_video_dimensions,
    validate_video_duration,
)

__all__ = [
    # API client
    "ApiEndpoint",
    "poll_op",
    "poll_op_raw",
    "sync_op",
    "sync_op_raw",
    # Upload helpers
    "upload_audio_to_comfyapi",
    "upload_file_to_comfyapi",
    "upload_images_to_comfyapi",
    "upload_video_to_comfyapi",
    # Download helpers
    "download_url_as_bytesio",
    "download_url_to_bytesio",
    "download_url_to_image_tensor",
    "download_url_to_video_output",
    # Conversions
    "audio_bytes_to_audio_input",
    "audio_input_to_mp3",
    "audio_to_base64_string",
    "bytesio_to_image_tensor",
    "downscale_image_tensor",
    "image_tensor_pair_to_batch",
    "pil_to_bytesio",
    "resize_mask_to_image",
    "tensor_to_base64_string",
    "tensor_to_bytesio",
    "tensor_to_pil",
    "text_filepath_to_base64_string",
    "text_filepath_to_data_uri",
    "trim_video",
    "video_to_base64_string",
    # Validation utilities
    "get_image_dimensions",
    "get_number_of_images",
    "validate_aspect_ratio_string",
    "validate_audio_duration",
    "validate_container_format_is_mp4",
    "validate_image_aspect_ratio",
    "validate_image_dimensions",
    "validate_images_aspect_ratio_closeness",
    "validate_string",
    "validate_video_dimensions",
    "validate_video_duration",
    # Misc functions
    "get_fs_object_size",
]
