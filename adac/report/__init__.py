"""Reports of a compiled model for people: plots (``plots``) and the report page per plugin (``page``: the numbers
in ``measure``, the browser and its screenshot in ``browser``)."""
