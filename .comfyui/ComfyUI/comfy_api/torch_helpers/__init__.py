from .torch_compile import set_torch_compile_wrapper

__all__ = [
    "set_torch_compile_wrapper",
]
