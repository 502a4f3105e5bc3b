"""The one exception type a user can cause: its message says what was wrong and what to do."""


class MultiIDError(ValueError):
    """Bad input or a missing/misplaced file; the message is shown to the user as it is."""
