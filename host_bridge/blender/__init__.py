"""The Blender VSE host: pure planning modules (tested without Blender) and the extension that uses them."""
