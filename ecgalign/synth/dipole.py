"""The 3-D cardiac dipole: beats as sums of Gaussian bumps, projected onto the 12 standard leads.

Each wave (P, Q, R, S, ST, T, U, and extra components such as R' or a notched R) is an asymmetric Gaussian in
time with a fixed direction in Frank X/Y/Z space, as in ECGSYN (McSharry et al., IEEE TBME 2003) and its
3-D extension (Sameni et al., EURASIP J. Adv. Signal Process. 2007). Frank axes: X right -> left, Y head ->
feet, Z front -> back (so anterior forces are negative Z and make V1-V3 positive).

The dipole is projected onto I, II and V1-V6 with the Dower transform (Dower et al., Clin. Cardiol. 3:87,
1980; coefficients as tabulated by Edenbrandt & Pahlm, J. Electrocardiol. 21:361, 1988, and Bailon, Laguna &
Sornmo, ch. 8 of Clifford et al., "Advanced Methods and Tools for ECG Data Analysis", 2006). III, aVR, aVL and
aVF are then derived from I and II (ecgalign.data.leads) so Einthoven and Goldberger hold exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ecgalign.data.leads import derive_limb_leads

# Rows: V1..V6, I, II; columns: Frank X, Y, Z (Dower 1980).
DOWER = np.array(
    [
        [-0.515, 0.157, -0.917],
        [0.044, 0.164, -1.387],
        [0.882, 0.098, -1.277],
        [1.213, 0.127, -0.601],
        [1.125, 0.127, -0.086],
        [0.831, 0.076, 0.230],
        [0.632, -0.235, 0.059],
        [0.235, 1.066, -0.132],
    ]
)
# Order of the independent leads the Dower rows produce, rearranged as I, II, V1..V6.
INDEPENDENT_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
DOWER_8 = DOWER[[6, 7, 0, 1, 2, 3, 4, 5]]  # (8, 3) rows in INDEPENDENT_LEADS order
# All 12 leads as linear maps of the dipole (for measurements on templates; the record uses DOWER_8 + leads.py).
_III, _AVR, _AVL, _AVF = derive_limb_leads(DOWER_8[0], DOWER_8[1])
DOWER_12 = np.vstack([DOWER_8[:2], _III, _AVR, _AVL, _AVF, DOWER_8[2:]])  # (12, 3) in LEADS_12 order


def ventricular_rows(proximity) -> np.ndarray:
    """(8, 3) lead vectors (I, II, V1-V6) for ventricular sources: the Dower rows with V1-V6 scaled by
    ``proximity`` (6,), the electrodes' distance from the ventricles that one population transform averages
    out (ptbxl-500 NORM: R, S and T all larger in V2 and smaller in V3-V4 than the Dower rows give)."""
    return DOWER_8 * np.r_[1.0, 1.0, np.asarray(proximity, dtype=float)][:, None]


def atrial_rows(chest_gain: float) -> np.ndarray:
    """(8, 3) lead vectors (I, II, V1-V6) for atrial sources (P, Ta, ectopic P): the Dower rows with the chest
    rows scaled by ``chest_gain``. The atria lie posterior and superior, farther from the precordial electrodes
    than the ventricles the Dower transform is built for; real ptbxl-500 NORM P waves are about 0.07 mV in I
    and 0.05 mV in V3-V6, which no single dipole through the Dower rows gives (its best fit has 0.01 in I)."""
    return DOWER_8 * np.r_[1.0, 1.0, np.full(6, chest_gain)][:, None]

# Component kinds: how a component's timing follows the beat.
P_WAVE, QRS, REPOL = 0, 1, 2
_SQRT_HALF_PI = float(np.sqrt(np.pi / 2))
# A component occupies mu - REACH * sigma_left .. mu + REACH * sigma_right (exp(-REACH^2 / 2) < 0.1 %).
REACH = 3.8


@dataclass
class Template:
    """One beat as components. Times in seconds relative to QRS onset; amplitudes in mV (Frank X, Y, Z).

    REPOL components stretch with the JT interval: at a beat whose QT differs from ``qt``, their centre moves to
    qrs + (mu - qrs) * f and their widths scale by f, with f = (QT_beat - qrs) / (qt - qrs).
    """

    qrs: float  # QRS duration (s)
    qt: float  # QT interval the REPOL components are laid out for (s)
    names: list[str] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    mu: list[float] = field(default_factory=list)
    sl: list[float] = field(default_factory=list)
    sr: list[float] = field(default_factory=list)
    amp: list[np.ndarray] = field(default_factory=list)

    def add(self, name: str, kind: int, mu: float, sl: float, vec, sr: float | None = None) -> None:
        if name in self.names:
            raise ValueError(f"template already has a component {name!r}")
        self.names.append(name)
        self.kind.append(kind)
        self.mu.append(float(mu))
        self.sl.append(float(sl))
        self.sr.append(float(sl if sr is None else sr))
        self.amp.append(np.asarray(vec, dtype=float).copy())

    def has(self, name: str) -> bool:
        return name in self.names

    def vec(self, name: str) -> np.ndarray:
        return self.amp[self.names.index(name)]

    def set_vec(self, name: str, vec) -> None:
        self.amp[self.names.index(name)] = np.asarray(vec, dtype=float).copy()

    def remove_kind(self, kind: int) -> None:
        keep = [i for i, k in enumerate(self.kind) if k != kind]
        for attr in ("names", "kind", "mu", "sl", "sr", "amp"):
            setattr(self, attr, [getattr(self, attr)[i] for i in keep])

    def scale(self, factor: float, kind: int | None = None) -> None:
        for i, k in enumerate(self.kind):
            if kind is None or k == kind:
                self.amp[i] = self.amp[i] * factor

    def transform(self, matrix: np.ndarray) -> None:
        """Apply a 3x3 linear map (e.g. a rotation) to every component direction."""
        self.amp = [matrix @ a for a in self.amp]

    def arrays(self) -> tuple[np.ndarray, ...]:
        """(kind, mu, sl, sr, amp (N, 3)) as arrays."""
        amp = np.array(self.amp, dtype=float).reshape(-1, 3)
        return (np.array(self.kind, dtype=int), np.array(self.mu), np.array(self.sl), np.array(self.sr), amp)

    def copy(self) -> Template:
        return Template(
            self.qrs,
            self.qt,
            list(self.names),
            list(self.kind),
            list(self.mu),
            list(self.sl),
            list(self.sr),
            [a.copy() for a in self.amp],
        )

    def qrs_area(self) -> np.ndarray:
        """Net QRS area vector (mV*s, Frank X/Y/Z): sum of amplitude * area of the unit bump."""
        kind, _, sl, sr, amp = self.arrays()
        sel = kind == QRS
        return (amp[sel] * ((sl[sel] + sr[sel]) * _SQRT_HALF_PI)[:, None]).sum(axis=0)

    def render(
        self,
        fs: float = 1000.0,
        start: float = -0.35,
        stop: float = 0.75,
        kinds: tuple[int, ...] = (P_WAVE, QRS, REPOL),
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The beat at its own QT, 12 leads: (t (T,), leads (12, T)); for measurements, not for records.
        ``rows``: (12, 3) lead vectors (default the Dower rows; the record's own ventricular rows, limb leads
        derived, for what the record shows of ventricular sources)."""
        t = np.arange(start, stop, 1.0 / fs)
        kind, mu, sl, sr, amp = self.arrays()
        sel = np.zeros(kind.shape, dtype=bool)
        for k in kinds:
            sel |= kind == k
        x = t[None, :] - mu[sel, None]
        s = np.where(x < 0, sl[sel, None], sr[sel, None])
        g = np.exp(-0.5 * (x / s) ** 2)  # (N, T)
        dip = np.einsum("nc,nt->ct", amp[sel], g)  # (3, T)
        return t, project(DOWER_12 if rows is None else rows, dip)


def project(matrix: np.ndarray, dipole: np.ndarray) -> np.ndarray:
    """Leads (L, T) = matrix (L, 3) x dipole (3, T), written as three broadcast products: a BLAS call here
    would start its own threads, which oversubscribes the cores when records are made in worker processes."""
    return matrix[:, 0:1] * dipole[0] + matrix[:, 1:2] * dipole[1] + matrix[:, 2:3] * dipole[2]


def frontal_axis(area: np.ndarray) -> float:
    """Frontal QRS axis (degrees, -180..180) of a net area vector, from its projections on I and aVF."""
    lead_i = float(DOWER_12[0] @ area)
    lead_avf = float(DOWER_12[5] @ area)
    return float(np.degrees(np.arctan2(lead_avf, lead_i)))


def rotation(about_x: float, about_y: float, about_z: float) -> np.ndarray:
    """Rotation matrix (degrees) about Frank X (sagittal tilt), Y (transverse turn), Z (frontal rotation)."""
    ax, ay, az = np.radians([about_x, about_y, about_z])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def frontal_rotation_to(area: np.ndarray, target_deg: float, fixed: np.ndarray | None = None) -> np.ndarray:
    """The smallest rotation about Frank Z that brings the frontal axis of ``area`` (plus an unrotated ``fixed``
    area) to ``target_deg``; the closest reachable axis when the target cannot be reached exactly.

    With c = cos(psi), s = sin(psi), the projections on I and aVF are a c + b s + k; the target axis is
    reached where aVF cos(theta) - I sin(theta) = 0, i.e. P c + Q s = -C, with I cos + aVF sin > 0.
    """
    fixed = np.zeros(3) if fixed is None else np.asarray(fixed, dtype=float)
    rows = DOWER_12[[0, 5]]  # (2, 3): I, aVF
    a = rows[:, 0] * area[0] + rows[:, 1] * area[1]
    b = rows[:, 1] * area[0] - rows[:, 0] * area[1]
    k = rows[:, 2] * area[2] + rows @ fixed
    th = np.radians(target_deg)
    p, q, c = (v[1] * np.cos(th) - v[0] * np.sin(th) for v in (a, b, k))
    r = float(np.hypot(p, q))
    if r > abs(c):
        base, spread = float(np.arctan2(q, p)), float(np.arccos(-c / r))
        good = []
        for psi in (base + spread, base - spread):
            lead_i, avf = a * np.cos(psi) + b * np.sin(psi) + k
            if lead_i * np.cos(th) + avf * np.sin(th) > 0:
                good.append((psi + np.pi) % (2 * np.pi) - np.pi)
        if good:
            return rotation(0.0, 0.0, float(np.degrees(min(good, key=abs))))
    psi = np.radians(np.arange(-180.0, 180.0, 1.0))
    lead_i, avf = a[:, None] * np.cos(psi) + b[:, None] * np.sin(psi) + k[:, None]
    err = np.abs((np.degrees(np.arctan2(avf, lead_i)) - target_deg + 180.0) % 360.0 - 180.0)
    return rotation(0.0, 0.0, float(np.degrees(psi[int(np.argmin(err))])))


def render_dipole(
    mu: np.ndarray, sl: np.ndarray, sr: np.ndarray, amp: np.ndarray, fs: float, n: int
) -> np.ndarray:
    """Sum of asymmetric Gaussians, each evaluated only on its own window: (C, n) for amp (N, C), e.g. the
    (3, n) dipole or (9, n) electrode-local sources.

    mu, sl, sr: (N,) seconds from the first sample; amp: (N, C) mV. Vectorised over all components at once;
    samples outside the record fall into two guard bins that are dropped.
    """
    if mu.size == 0:
        return np.zeros((amp.shape[1] if amp.ndim == 2 else 3, n))
    start = np.floor((mu - REACH * sl) * fs).astype(np.int64)
    width = int(np.ceil(REACH * float(np.max(sl + sr)) * fs)) + 2
    idx = start[:, None] + np.arange(width)[None, :]  # (N, W)
    x = idx / fs - mu[:, None]
    x /= np.where(x < 0, sl[:, None], sr[:, None])
    g = np.exp(-0.5 * x * x)
    bins = (np.clip(idx, -1, n) + 1).ravel()
    return np.stack(
        [
            np.bincount(bins, weights=(g * amp[:, axis, None]).ravel(), minlength=n + 2)[1 : n + 1]
            for axis in range(amp.shape[1])
        ]
    )
