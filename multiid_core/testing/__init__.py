"""Helpers that build small synthetic inputs so tests run offline, without real model weights."""
