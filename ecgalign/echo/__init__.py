"""Echo DICOMs in, ECG strips out (EEE, seed 003, Sec. 3.1)."""
