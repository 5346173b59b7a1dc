"""Training (torch): mix-and-separate on ordinary video files. Not imported by the inference path."""
