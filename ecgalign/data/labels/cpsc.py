"""The CPSC2018 label scheme: nine classes, coded 1..9 in ``REFERENCE.csv`` in this order (Liu et al., J. Med.
Imaging Health Inform. 8(7), 2018). Here, below the readers, so that cross-dataset maps can name the classes
without importing a reader."""

from __future__ import annotations

from ecgalign.data.labels import FixedScheme

CPSC2018_CLASSES: tuple[str, ...] = ("NORM", "AF", "IAVB", "LBBB", "RBBB", "PAC", "PVC", "STD", "STE")


def cpsc2018_scheme() -> FixedScheme:
    return FixedScheme("cpsc2018", {"cpsc2018": list(CPSC2018_CLASSES)})
