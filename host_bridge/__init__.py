"""Hosts of the pixelsep engine: the command line, and later Blender, Qt, pedalboard and timelines."""
