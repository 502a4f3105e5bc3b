"""Identity-preserving video generation methods (ConsisID, Ingredients, Concat-ID), free of ComfyUI."""
