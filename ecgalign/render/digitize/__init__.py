"""Classic (non-learned) ECG printout digitiser: image -> 12-lead signal in mV -> WFDB (issue 5, part 2).

The image-processing baseline ECG-Scan (seeds/000, section 5.2) compares against ("DIP" digitisation before a
signal encoder), scored like the George B. Moody PhysioNet Challenge 2024 (``ecgalign.eval.signal_metrics``).

    from ecgalign.render.digitize import digitize, digitize_file
    res = digitize("printout.png", layout="3x4+II")      # speed 25 mm/s, gain 10 mm/mV, 500 Hz, 10 s
    res.signal                                            # (12, 5000) float32 mV, LEADS_12 order, NaN where not shown
    res.to_wfdb("out/rec")                                # out/rec.hea + out/rec.dat
    digitize_file("printout.png", "out/rec", layout="6x2")

Steps: ink and grid darkness maps with the paper's brightness divided out; rotation from the sharpest
projections of grid and ink (+-5 degrees); px/mm from the grid period along x and y (a coloured grid under grey
shading from its chroma; or the calibration pulses, or the page width); thin dark lines only (top-hat) with
hysteresis; page frames, rules, border fill and text masked (``mask``); trace rows from the ink's horizontal
projection; one connected path per row by dynamic programming; 0 mV from each row's calibration-pulse foot (with
or without a flat lead-in; else the trace's most common level); t = 0 and the seconds per row from the trace's
extent checked against the layout (``geometry``); the layout's time windows split each row into leads. Every
result has a per-lead confidence and a status (ok / suspect / failed) with the reasons; pages of noise or with
no drawn line are refused. See docs/digitize.md.
"""

from ecgalign.render.digitize.core import (
    Digitized,
    PanelWindow,
    digitize,
    digitize_file,
    layout_windows,
    shown_mask,
    write_wfdb,
)
from ecgalign.render.digitize.image import DigitizeError, load_image
from ecgalign.render.imagefile import ImageError

__all__ = [
    "DigitizeError",
    "ImageError",
    "Digitized",
    "PanelWindow",
    "digitize",
    "digitize_file",
    "layout_windows",
    "load_image",
    "shown_mask",
    "write_wfdb",
]
