"""The CogVideoX family without ComfyUI: the transformer and its identity modules, checkpoints (diffusers and SAT),
the noise schedule and solver steps, and each video's inputs (face frame, references, identity tokens)."""
