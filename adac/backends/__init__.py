"""Backends: the IR -> code (FAUST) and the code -> plugins (JUCE)."""
