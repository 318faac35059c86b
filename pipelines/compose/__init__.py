"""The composition root: builds the objects a command or the API needs from typed settings. Nothing below imports it."""
