"""The registry of open ECG datasets that ``ecgalign data download`` fetches, with their real sources.

Each entry names where the files live (``base_url``) and where the publisher's checksums come from:

- ``physionet``: the project's ``SHA256SUMS.txt`` (``<sha256>  <relative path>`` per line), which PhysioNet
  publishes beside every project version at ``https://physionet.org/files/<project>/<version>/``.
- ``zenodo``: the record JSON of the Zenodo REST API (``https://zenodo.org/api/records/<id>``), whose
  ``files[]`` carry ``key``, ``size``, ``checksum`` (``"md5:<hex>"``) and ``links.self`` (the download URL).

``subsets`` are named include patterns (globs on the relative path, ``*`` also crossing ``/``) a user can pass
as ``include=["100hz"]``; ``include`` is a fixed restriction for entries that are part of a larger project
(``cpsc2018`` is the ``training/cpsc_2018`` folder of the Challenge 2021 project). A Zenodo entry's version is
its record id (a record's files never change). Sizes are approximate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ecgalign.data.errors import InputError, UnknownNameError

PHYSIONET_CITATION = (
    "Goldberger AL et al., PhysioBank, PhysioToolkit, and PhysioNet: Components of a new research resource "
    "for complex physiologic signals, Circulation 101(23):e215-e220, 2000."
)


@dataclass(frozen=True)
class DatasetSource:
    """One downloadable dataset: where it lives, how its checksums are obtained, how to cite it."""

    name: str
    title: str
    description: str
    version: str
    citation: str
    licence: str
    homepage: str
    base_url: str  # files live at base_url + relative path
    manifest: Literal["physionet", "zenodo"]
    manifest_url: str
    size: str
    include: tuple[str, ...] = ()
    subsets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    archives: bool = False  # files are zip archives that ``extract=True`` unpacks

    @property
    def manifest_name(self) -> str:
        """File name of the manifest inside a download folder, and inside a mirror."""
        return "SHA256SUMS.txt" if self.manifest == "physionet" else "zenodo-record.json"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description, "version": self.version,
            "size": self.size, "licence": self.licence, "homepage": self.homepage, "citation": self.citation,
            "base_url": self.base_url, "manifest": self.manifest, "manifest_url": self.manifest_url,
            "include": list(self.include), "subsets": {k: list(v) for k, v in self.subsets.items()},
            "archives": self.archives,
        }


_REGISTRY: dict[str, DatasetSource] = {}


def register_dataset(source: DatasetSource) -> DatasetSource:
    """Add a dataset to the registry; a duplicate name raises ValueError."""
    if source.name in _REGISTRY:
        raise InputError(f"dataset {source.name!r} is already registered")
    if source.manifest not in ("physionet", "zenodo"):
        raise InputError(
            f"dataset {source.name!r}: manifest must be 'physionet' or 'zenodo', got {source.manifest!r}")
    _REGISTRY[source.name] = source
    return source


def get_dataset(name: str) -> DatasetSource:
    """The registered dataset ``name``; an unknown name raises KeyError listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(f"unknown dataset {name!r}; downloadable: {', '.join(sorted(_REGISTRY))}") from None


def dataset_names() -> list[str]:
    return sorted(_REGISTRY)


_PTBXL_META = ("ptbxl_database.csv", "scp_statements.csv", "LICENSE.txt")
_CHALLENGE_SOURCES = ("cpsc_2018", "cpsc_2018_extra", "georgia", "chapman_shaoxing", "ningbo", "ptb",
                      "ptb-xl", "st_petersburg_incart")
_CHALLENGE_2021_CITATION = (
    "Reyna MA et al., Will Two Do? Varying Dimensions in Electrocardiography: The PhysioNet/Computing in "
    "Cardiology Challenge 2021, Computing in Cardiology 2021, doi:10.23919/CinC53138.2021.9662687; "
    "Reyna M et al., PhysioNet (version 1.0.3), 2022, doi:10.13026/34va-7q14. " + PHYSIONET_CITATION
)

def _physionet_source(name: str, project: str, version: str, **kw: Any) -> DatasetSource:
    base = f"https://physionet.org/files/{project}/{version}/"
    return DatasetSource(name=name, version=version,
                         homepage=f"https://physionet.org/content/{project}/{version}/", base_url=base,
                         manifest="physionet", manifest_url=base + "SHA256SUMS.txt", **kw)


def _zenodo_source(name: str, record: int, **kw: Any) -> DatasetSource:
    return DatasetSource(name=name, version=str(record), homepage=f"https://zenodo.org/records/{record}",
                         base_url=f"https://zenodo.org/records/{record}/files/", manifest="zenodo",
                         manifest_url=f"https://zenodo.org/api/records/{record}", archives=True, **kw)


register_dataset(_physionet_source(
    "ptb-xl", "ptb-xl", "1.0.3",
    title="PTB-XL, a large publicly available electrocardiography dataset",
    description="21,799 clinical 10 s 12-lead ECGs (18,869 patients) at 100 and 500 Hz, WFDB, SCP-ECG "
                "statements, reports, strat_fold splits",
    citation="Wagner P et al., PTB-XL, a large publicly available electrocardiography dataset, Scientific "
             "Data 7:154, 2020, doi:10.1038/s41597-020-0495-6; Wagner P et al., PhysioNet (version 1.0.3), "
             "2022, doi:10.13026/kfzx-aw45. " + PHYSIONET_CITATION,
    licence="CC BY 4.0", size="3.0 GB",
    subsets=MappingProxyType({"metadata": _PTBXL_META, "100hz": _PTBXL_META + ("records100/*",),
                              "500hz": _PTBXL_META + ("records500/*",)}),
))

register_dataset(_physionet_source(
    "challenge-2021", "challenge-2021", "1.0.3",
    title="Will Two Do? Varying Dimensions in Electrocardiography: PhysioNet/CinC Challenge 2021",
    description="88,253 public training 12-lead ECGs in challenge format (.hea + .mat, SNOMED CT # Dx): "
                "CPSC2018, CPSC2018-extra, Georgia, Chapman-Shaoxing, Ningbo, PTB, PTB-XL, "
                "St Petersburg INCART",
    citation=_CHALLENGE_2021_CITATION, licence="CC BY 4.0", size="~9 GB",
    subsets=MappingProxyType({src: (f"training/{src}/*",) for src in _CHALLENGE_SOURCES}),
))

register_dataset(_physionet_source(
    "cpsc2018", "challenge-2021", "1.0.3",
    title="CPSC2018 (China Physiological Signal Challenge 2018), Challenge 2021 edition",
    description="6,877 12-lead ECGs (500 Hz, 6-60 s) of the CPSC2018 training set as redistributed in "
                "challenge format (training/cpsc_2018/g1..g7, SNOMED CT labels) by PhysioNet Challenge 2021; "
                "not the ICBEB original .mat + REFERENCE.csv, which has no published checksums",
    citation="Liu F et al., An open access database for evaluating the algorithms of electrocardiogram "
             "rhythm and morphology abnormality detection, J Med Imaging Health Inform 8(7):1368-1373, 2018. "
             + _CHALLENGE_2021_CITATION,
    licence="CC BY 4.0", size="~1.3 GB", include=("training/cpsc_2018/*",),
))

register_dataset(_zenodo_source(
    "code-15", 4916206,
    title="CODE-15%: a large scale annotated dataset of 12-lead ECGs",
    description="345,779 exams (233,770 patients) of the Brazilian telehealth network, 400 Hz, 4096 samples, "
                "HDF5 in 18 zip parts (exams_part0..17.zip) + exams.csv (1dAVb RBBB LBBB SB AF ST, age, sex)",
    citation="Ribeiro AH et al., CODE-15%: a large scale annotated dataset of 12-lead ECGs, Zenodo, 2021, "
             "doi:10.5281/zenodo.4916206; Lima EM et al., Deep neural network-estimated electrocardiographic "
             "age as a mortality predictor, Nat Commun 12:5117, 2021.",
    licence="CC BY 4.0 (as stated on the Zenodo record)", size="~30 GB zipped (~68 GB HDF5)",
    subsets=MappingProxyType({"labels": ("exams.csv",), "part0": ("exams.csv", "exams_part0.zip")}),
))

register_dataset(_zenodo_source(
    "code-test", 3765780,
    title="CODE-test: annotated 12-lead ECG test set (Ribeiro et al. 2020)",
    description="827 exams annotated by cardiologists, residents and students, 400 Hz, 4096 samples: "
                "data.zip with ecg_tracings.hdf5, attributes.csv, annotations/gold_standard.csv",
    citation="Ribeiro AH et al., Automatic diagnosis of the 12-lead ECG using a deep neural network, Nat "
             "Commun 11:1760, 2020, doi:10.1038/s41467-020-15432-4; data: doi:10.5281/zenodo.3765780.",
    licence="CC BY 4.0 (as stated on the Zenodo record)", size="~0.2 GB",
))

register_dataset(_physionet_source(
    "mimic-iv-ecg", "mimic-iv-ecg", "1.0",
    title="MIMIC-IV-ECG: Diagnostic Electrocardiogram Matched Subset",
    description="~800,000 diagnostic 10 s 12-lead ECGs at 500 Hz (~160,000 patients), WFDB, record_list.csv, "
                "machine_measurements.csv (report_0..report_17); open access",
    citation="Gow B et al., MIMIC-IV-ECG: Diagnostic Electrocardiogram Matched Subset (version 1.0), "
             "PhysioNet, 2023, doi:10.13026/4nqg-sb35. " + PHYSIONET_CITATION,
    licence="ODbL 1.0 (Open Data Commons Open Database License)", size="~90 GB",
    subsets=MappingProxyType({"metadata": ("*.csv", "LICENSE.txt", "RECORDS")}),
))
