"""What every Wan method shares: a Wan 2.1 DiT's checkpoint layout, and reference tokens' positions and regions."""
