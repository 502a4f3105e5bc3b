"""Stand-In without ComfyUI: its released adapter files, and where its reference tokens sit."""
