"""Spec -> Report: the one walk over the layer graph (`analysis`), the static int8 flash/RAM estimate of the
exported model (`memory`), and the Report's readers for people and programs (`render`, `diff`, `draw`, `plot`)."""
