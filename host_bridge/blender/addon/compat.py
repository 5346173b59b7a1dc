"""The one place where Blender versions differ: the sequencer's strip collections and types."""

from __future__ import annotations


def strips(sequence_editor):
    """The top-level strips (``strips`` in Blender 4.4+, ``sequences`` before)."""
    return sequence_editor.strips if hasattr(sequence_editor, "strips") else sequence_editor.sequences


def all_strips(sequence_editor):
    """Every strip, inside meta strips too."""
    return sequence_editor.strips_all if hasattr(sequence_editor, "strips_all") else sequence_editor.sequences_all


def strip_type():
    import bpy

    return getattr(bpy.types, "Strip", None) or bpy.types.Sequence
