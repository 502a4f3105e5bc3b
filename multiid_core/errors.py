"""The one exception type a user can cause: its message says what was wrong and what to do."""


class MultiIDError(ValueError):
    """Bad input or a missing/misplaced file; the message is shown to the user as it is."""


def non_finite_message(step: int, steps: int) -> str:
    """Why a run stops instead of saving a black video, and what to try."""
    return (
        f"The transformer's prediction became NaN or infinite at step {step} of {steps}, so the video would be "
        f"black; nothing was saved. On real cards the usual cause is fp16 overflow: load the model in bf16 (or "
        f"fp32), without fp16 weight storage. If bf16 fails too, a model file may be damaged: `python multiid.py "
        f"models check` names files that are cut short or not what they claim; download the transformer again."
    )
