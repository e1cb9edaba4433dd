"""Image models read printout files (issue 14): ``encode_image`` takes paths, PIL images and arrays of any size
(letterboxed to the trained size), ``ecgalign embed --images`` embeds a folder, and an image table with labels
is a dataset every evaluation protocol runs on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

import ecgalign
from ecgalign.cli.main import app
from ecgalign.eval.run import EvalConfig, evaluate
from ecgalign.hub import read_embeddings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs-0.1.0"


@pytest.fixture(scope="module")
def model():
    return ecgalign.load(FIXTURES / "scan-tiny", device="cpu")


@pytest.fixture(scope="module")
def printouts(tmp_path_factory, model):
    """12 printouts of random signals as PNG (trained size and 3x larger) and JPEG files."""
    folder = tmp_path_factory.mktemp("printouts")
    rng = np.random.default_rng(0)
    signals = (rng.standard_normal((12, 12, 1000)) * 0.3).astype(np.float32)
    images = model.render(signals, augment="none").numpy()  # (12, 3, 64, 96)
    for i, im in enumerate(images):
        pil = Image.fromarray((im.transpose(1, 2, 0) * 255).round().astype(np.uint8))
        if i % 3 == 0:
            pil.save(folder / f"r{i:02d}.png")
        elif i % 3 == 1:
            pil.resize((288, 192), Image.BILINEAR).save(folder / f"r{i:02d}.png")
        else:
            pil.resize((200, 150), Image.BILINEAR).save(folder / f"r{i:02d}.jpg", quality=92)
    return folder, images


def test_encode_image_takes_files_pil_and_arrays_of_any_size(model, printouts):
    folder, images = printouts
    exact = model.encode_image(folder / "r00.png")
    np.testing.assert_allclose(exact, model.encode_image(images[:1]), atol=2e-2)  # PNG quantisation only
    bigger = model.encode_image(folder / "r01.png")  # 3x the trained size, same aspect ratio
    np.testing.assert_allclose(bigger, model.encode_image(images[1:2]), atol=0.1)
    jpeg = model.encode_image(folder / "r02.jpg")  # another aspect ratio: letterboxed, still a unit vector
    assert jpeg.shape == (1, model.encode_image(images[:1]).shape[1])
    mixed = model.image_features([folder / "r00.png", Image.open(folder / "r01.png"), np.asarray(Image.open(folder / "r02.jpg"))])
    assert mixed.shape == (3, model.embed_dim) and np.isfinite(mixed).all()
    np.testing.assert_allclose(np.linalg.norm(model.encode_image([folder / "r03.png"]), axis=1), 1.0, rtol=1e-5)


def test_embed_images_cli_embeds_a_folder_and_names_an_unreadable_file(model, printouts, tmp_path):
    folder, _ = printouts
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in sorted(folder.iterdir()):
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    out = tmp_path / "emb.parquet"
    result = CliRunner().invoke(app, ["embed", "--checkpoint", str(FIXTURES / "scan-tiny"), "--images", str(mixed),
                                      "--out", str(out), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    rows, features = read_embeddings(out)
    assert len(rows) == 12 and "broken" not in set(rows["record_id"]) and features.shape == (12, model.embed_dim)
    assert '"skipped": 1' in result.output
    signal_model = CliRunner().invoke(app, ["embed", "--checkpoint", str(FIXTURES / "merit-tiny"), "--images",
                                            str(mixed), "--out", str(tmp_path / "x.parquet"), "--device", "cpu"])
    assert signal_model.exit_code != 0 and "needs an image model" in signal_model.output


def test_an_image_table_with_labels_is_an_evaluation_dataset(model, printouts, tmp_path):
    folder, _ = printouts
    files = sorted(folder.iterdir())
    table = pd.DataFrame({"image": [str(p) for p in files] * 3,
                          "record_id": [f"{p.stem}-{k}" for k in range(3) for p in files],
                          "superdiagnostic": (["NORM", "MI", "NORM;STTC", "CD"] * 9)})
    labels = tmp_path / "labels.csv"
    table.to_csv(labels, index=False)
    config = EvalConfig(protocols=("linear-probe", "zero-shot", "reconstruction"), fractions=(1.0,), seeds=(0,),
                        n_boot=20, plots=False, supervised=False)
    results, _ = evaluate(model, labels, config)
    assert results["dataset"]["embedded_records"] == 36
    probe = results["linear_probe"]["superdiagnostic"]
    assert set(probe) == {"model", "random_init"}
    assert "macro_auroc" in results["zero_shot"]["superdiagnostic"]["model"]
    assert "no signals" in results["reconstruction"]["skipped"]


def test_an_ink_model_reads_every_image_as_its_ink_map(printouts, tmp_path):
    """A run trained with `image.ink` loads as a model that turns files, arrays and tensors at the trained size
    into ink maps before encoding; its own renders (already ink maps) are encoded as they are."""
    import json
    import shutil

    import torch

    from ecgalign.render import image_tensor, ink_images

    folder, images = printouts
    run = tmp_path / "scan-ink"
    shutil.copytree(FIXTURES / "scan-tiny", run)
    card = json.loads((run / "model.json").read_text())
    card["recipe_resolved"]["image"]["ink"] = True  # what a run trained with image.ink saves
    (run / "model.json").write_text(json.dumps(card))
    ink = ecgalign.load(run, device="cpu")
    assert ink.ink and ink.task.recipe.image.ink
    size = ink.image_size
    from_file = ink.encode_image(folder / "r01.png")
    expected = ink.encode_image(image_tensor(folder / "r01.png", size, ink=True)[None], prepared=True)
    np.testing.assert_allclose(from_file, expected, atol=1e-6)
    at_size = torch.from_numpy(images[:2])
    np.testing.assert_allclose(ink.image_features(at_size), ink.image_features(ink_images(at_size, size), prepared=True),
                               atol=1e-6)
    signals = (np.random.default_rng(1).standard_normal((2, 12, 1000)) * 0.3).astype(np.float32)
    pages = ink.render(signals)
    assert set(np.unique(pages.numpy()[:, 0]).round(3)) >= {0.0, 1.0}  # ink on white
    np.testing.assert_allclose(ink.encode_ecg(signals), ink.encode_image(pages, prepared=True), atol=1e-6)


@pytest.fixture(scope="module")
def letter_pages(tmp_path_factory):
    """Two 100 dpi Letter printouts of one record: the renderer's row placement and ecg-image-kit's (rows packed
    at a 35 mm pitch low on the page)."""
    import torch

    from ecgalign.render import RenderConfig, Renderer
    from ecgalign.synth import synthesize_record

    folder = tmp_path_factory.mktemp("letter")
    signal = torch.from_numpy(np.ascontiguousarray(synthesize_record(0, seed=0, fs=500.0).signal, dtype=np.float32))
    for name, changes in (("default", {}), ("packed", {"row_pitch_mm": 35.0, "rows_top_mm": 66.0})):
        res = Renderer(RenderConfig.letter(100.0, **changes)).render(signal[None], 500.0, seed=[0])
        Image.fromarray(res.images[0].permute(1, 2, 0).numpy()).save(folder / f"{name}.png")
    return folder


def test_align_rows_moves_rows_before_encoding_and_counts_what_it_could_not_place(model, printouts, letter_pages):
    from ecgalign.render import image_tensor
    from ecgalign.render.digitize.rows import align_rows

    folder, _ = printouts
    aligned = ecgalign.load(FIXTURES / "scan-tiny", device="cpu")
    aligned.align_rows = True
    assert aligned.cache_identity() != model.cache_identity()
    packed = letter_pages / "packed.png"
    page, info = align_rows(packed, aligned.layout)
    assert info.status == "aligned"
    expected = aligned.encode_image(image_tensor(page, aligned.image_size)[None], prepared=True)
    np.testing.assert_allclose(aligned.encode_image(packed), expected, atol=1e-6)
    assert not np.allclose(model.encode_image(packed), expected, atol=1e-3)  # unaligned reads another page
    assert aligned.row_alignment["aligned"] == 1
    aligned.image_features([folder / "r00.png"])  # 64 x 96 px: no grid or rows to place, used unchanged
    assert aligned.row_alignment["unchanged"] == 1
    assert "r00.png" in aligned.row_alignment["unchanged_examples"][0]
    np.testing.assert_allclose(aligned.image_features(folder / "r00.png"), model.image_features(folder / "r00.png"),
                               atol=1e-6)
    assert aligned.random_init(seed=0).align_rows


def test_align_rows_cli_reports_counts_and_refuses_where_it_does_nothing(letter_pages, printouts, tmp_path):
    import json

    folder, _ = printouts
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in [*letter_pages.iterdir(), folder / "r00.png"]:
        (mixed / p.name).write_bytes(p.read_bytes())
    result = CliRunner().invoke(app, ["embed", "--checkpoint", str(FIXTURES / "scan-tiny"), "--images", str(mixed),
                                      "--out", str(tmp_path / "e.parquet"), "--device", "cpu", "--align-rows",
                                      "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["records"] == 3
    assert summary["row_alignment"]["aligned"] == 2 and summary["row_alignment"]["unchanged"] == 1
    signal_model = CliRunner().invoke(app, ["embed", "--checkpoint", str(FIXTURES / "merit-tiny"), "--data",
                                            str(mixed), "--out", str(tmp_path / "x.parquet"), "--align-rows"])
    assert signal_model.exit_code != 0 and "image models" in signal_model.output
    on_signals = CliRunner().invoke(app, ["eval", "zero-shot", "--checkpoint", str(FIXTURES / "scan-tiny"), "--data",
                                          "synth:20", "--align-rows", "--device", "cpu"])
    assert on_signals.exit_code != 0 and "printout image files" in on_signals.output


def test_align_rows_runs_the_digitiser_once_per_file(letter_pages, monkeypatch):
    """Features, embeddings and the random-init twin of one file share its row plan: the digitiser runs once,
    and every read gives the page ``align_rows`` gives."""
    from ecgalign.render import image_tensor
    from ecgalign.render.digitize import rows

    calls = []
    real = rows.plan_rows
    monkeypatch.setattr(rows, "plan_rows", lambda *a, **k: calls.append(1) or real(*a, **k))
    aligned = ecgalign.load(FIXTURES / "scan-tiny", device="cpu")
    aligned.align_rows = True
    packed = letter_pages / "packed.png"
    page, _ = rows.align_rows(packed, aligned.layout)
    calls.clear()
    first = aligned.image_features(packed)
    aligned.encode_image(packed)
    twin = aligned.random_init(seed=0)
    twin.image_features(packed)
    assert len(calls) == 1 and aligned.row_alignment["aligned"] == 1
    expected = aligned.image_features(image_tensor(page, aligned.image_size)[None], prepared=True)
    np.testing.assert_allclose(first, expected, atol=1e-6)
