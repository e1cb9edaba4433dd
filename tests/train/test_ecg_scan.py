"""The ecg-scan recipe: online rendering, a frozen teacher, the four loss terms, loading the image model."""

from __future__ import annotations

import numpy as np
import pytest

import ecgalign
from ecgalign.synth.store import synthesize_store
from ecgalign.tasks import load_recipe
from ecgalign.train.engine import pretrain

TINY_SCAN = ["image.encoder_kwargs.embed_dim=32", "image.encoder_kwargs.depth=1", "image.encoder_kwargs.num_heads=2",
             "image.height=96", "image.width=128", "image.decoder.dim=16", "image.decoder.depth=1",
             "image.decoder.num_heads=2", "data.batch_size=4", "data.num_workers=0", "train.accelerator=cpu",
             "train.log_every=1", "optim.warmup_steps=1"]


@pytest.fixture(scope="module")
def scan_setup(tmp_path_factory, tiny, fast):
    root = tmp_path_factory.mktemp("scan")
    from ecgalign.data.preprocess import Preprocess

    synthesize_store(root / "paired", 24, seed=21, fs=100.0, preprocess=Preprocess.preset("baselines"))
    teacher = pretrain(load_recipe("clip", {"model": tiny["clip"]}, [*fast, "optim.max_steps=2"]), root / "paired",
                       root / "teacher", progress=False).run_dir
    synthesize_store(root / "mv", 24, seed=22, fs=100.0)  # millivolts, what the renderer draws
    return root, teacher


def test_ecg_scan_trains_every_term_and_loads_as_an_image_model(scan_setup):
    root, teacher = scan_setup
    recipe = load_recipe("ecg-scan", sets=[*TINY_SCAN, "optim.max_steps=3"])
    result = pretrain(recipe, root / "mv", root / "scan", teacher=teacher, progress=False)
    assert result.steps == 3 and np.isfinite(result.final_loss)
    header = (root / "scan" / "metrics.csv").read_text().splitlines()[0]
    for term in ("contrastive", "gram", "reconstruction", "lead_consistency"):
        assert term in header
    assert list((teacher / "embeddings").glob("teacher-*.signal.npy"))  # computed once, cached by the teacher
    model = ecgalign.load(root / "scan", device="cpu")
    images = model.render(np.zeros((2, 12, 1000), np.float32))
    assert tuple(images.shape) == (2, 3, 96, 128)
    z = model.encode_image(images)
    assert z.shape == (2, 256) and np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)
    assert model.image_features(images).shape == (2, 32)
    assert model.reconstruct(images).shape == (2, 12, 1000)


def test_ablations_switch_terms_off(scan_setup):
    root, teacher = scan_setup
    recipe = load_recipe("ecg-scan", sets=[*TINY_SCAN, "optim.max_steps=1", "objective.gram=0",
                                           "objective.lead_consistency=0"])
    pretrain(recipe, root / "mv", root / "nogram", teacher=teacher, progress=False)
    header = (root / "nogram" / "metrics.csv").read_text().splitlines()[0]
    assert "gram" not in header.split(",") and "lead_consistency" not in header.split(",")
    with pytest.raises(ValueError, match="regularises the reconstruction"):
        load_recipe("ecg-scan", sets=["objective.reconstruction=0"])


def test_bad_teacher_and_data_are_refused(scan_setup, tiny, fast):
    root, teacher = scan_setup
    recipe = load_recipe("ecg-scan", sets=[*TINY_SCAN, "optim.max_steps=1"])
    with pytest.raises(ValueError, match="--teacher"):
        pretrain(recipe, root / "mv", root / "r1", progress=False)
    mae = pretrain(load_recipe("mae", {"model": tiny["mae"]}, [*fast, "optim.max_steps=1"]), root / "paired",
                   root / "mae", progress=False).run_dir
    with pytest.raises(ValueError, match="joint ECG-text space"):
        pretrain(recipe, root / "mv", root / "r2", teacher=mae, progress=False)
    with pytest.raises(ValueError, match="does not hold this encoder's input"):
        pretrain(recipe, root / "paired", root / "r3", teacher=teacher, progress=False)  # z-scored, not mV


def test_the_evaluation_harness_runs_on_printouts_of_the_records(scan_setup):
    import json

    from ecgalign.eval.run import EvalConfig, evaluate

    root, teacher = scan_setup
    if not (root / "scan" / "model.json").exists():
        pretrain(load_recipe("ecg-scan", sets=[*TINY_SCAN, "optim.max_steps=1"]), root / "mv", root / "scan",
                 teacher=teacher, progress=False, overwrite=True)
    model = ecgalign.load(root / "scan", device="cpu")
    model.eval_augment = "light"
    config = EvalConfig(label_sets=["superdiagnostic"], fractions=(1.0,), seeds=(0,), n_boot=50, plots=False)
    results, _ = evaluate(model, root / "mv", config)
    assert set(results["linear_probe"]["superdiagnostic"]) == {"model", "random_init"}  # no signal-supervised ref
    assert "model" in results["zero_shot"]["superdiagnostic"] and "model" in results["retrieval"]
    recon = results["reconstruction"]
    assert set(recon) == {"model", "random_init"} and recon["model"]["records"] == 24
    assert set(recon["model"]["snr_db"]["per_lead"]) == set(ecgalign.data.record.LEADS_12)
    assert set(recon["model"]["lead_consistency_db"]["per_lead"]) == {"III", "aVR", "aVL", "aVF"}
    assert recon["model"]["reference_lead_consistency_db"]["overall"]["mean_db"] > 40  # the synthetic truth
    json.dumps(results, allow_nan=False)


def test_the_digitiser_path_evaluates_a_signal_teacher_through_printouts(scan_setup):
    """`eval --via-digitizer`: a signal checkpoint sees the records as printouts read back by the digitiser;
    no signal-supervised reference; one reconstruction row; the digitiser's counts are in the results."""
    import json

    from ecgalign.hub.digitized import DigitizedSignalModel
    from ecgalign.eval.run import EvalConfig, evaluate

    root, teacher = scan_setup
    model = DigitizedSignalModel(ecgalign.load(teacher, device="cpu"))
    config = EvalConfig(protocols=("linear-probe", "zero-shot", "reconstruction"), label_sets=["superdiagnostic"],
                        fractions=(1.0,), seeds=(0,), n_boot=20, plots=False)
    results, _ = evaluate(model, root / "mv", config)
    assert set(results["linear_probe"]["superdiagnostic"]) == {"model", "random_init"}
    assert results["digitizer"]["images"] == 24 and results["checkpoint"]["via_digitizer"]["layout"] == "3x4+II"
    assert list(results["reconstruction"]) == ["model"]
    assert results["reconstruction"]["model"]["snr_db"]["overall"]["mean_db"] > 10
    json.dumps(results, allow_nan=False)


def test_wild_batches_draw_page_conventions_per_group(monkeypatch):
    """`image.augment=wild` draws page conventions (geometry, grid, line faintness...) for every group of
    WILD_GROUP images at the training size; other presets keep the recipe's one page."""
    import torch

    from ecgalign.tasks import ecg_scan

    calls = []
    real = ecg_scan.sample_wild_config

    def spy(seed, **kw):
        calls.append((seed, kw))
        return real(seed, **kw)

    monkeypatch.setattr(ecg_scan, "sample_wild_config", spy)
    x = torch.randn(2 * ecg_scan.WILD_GROUP + 3, 12, 1000).cumsum(-1) * 0.02
    task = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=wild"]), 16, 16).train()
    a = task._render(x, torch.Generator().manual_seed(5))
    assert len(calls) == 3 and len({s for s, _ in calls}) == 3
    assert all(kw == {"layout": "3x4+II", "size": (96, 128), "rows": "random"} for _, kw in calls)
    assert a.shape == (len(x), 3, 96, 128)
    b = task._render(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)  # seeded: the same generator state, the same pages
    pitches = {round(real(s, **kw).row_pitch_mm, 3) for s, kw in calls}
    assert len(pitches) == 3
    calls.clear()
    light = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=light"]), 16, 16).train()
    light._render(x, torch.Generator().manual_seed(5))
    task.eval()._render(x, None)
    assert calls == []


def test_wild_share_mixes_light_pages_and_wild_pages(monkeypatch):
    """`image.wild_share` < 1 renders the first part of a batch on the recipe's page with the light
    augmentation (the same pixels as an all-light batch with the same per-image seeds) and only the rest with
    wild page conventions; 1.0 keeps the all-wild batch; values outside (0, 1] are refused by name."""
    import torch

    from ecgalign.data.errors import InputError
    from ecgalign.tasks import ecg_scan

    calls = []
    real = ecg_scan.sample_wild_config
    monkeypatch.setattr(ecg_scan, "sample_wild_config", lambda seed, **kw: calls.append(seed) or real(seed, **kw))
    x = torch.randn(2 * ecg_scan.WILD_GROUP, 12, 1000).cumsum(-1) * 0.02
    half = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=wild",
                                                              "image.wild_share=0.25"]), 16, 16).train()
    mixed = half._render(x, torch.Generator().manual_seed(3))
    assert mixed.shape == (len(x), 3, 96, 128) and len(calls) == 1  # 4 wild images: one page convention
    light = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=light"]), 16, 16).train()
    clean = light._render(x, torch.Generator().manual_seed(3))
    n_light = len(x) - 4
    assert torch.equal(mixed[:n_light], clean[:n_light])  # same per-image seeds, same light pages
    assert (mixed[n_light:] - clean[n_light:]).abs().mean() > 0.01  # the wild part is drawn differently
    for bad in ("0", "1.5", "-0.2"):
        with pytest.raises(InputError, match="wild_share"):
            load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=wild", f"image.wild_share={bad}"])


def test_wild_rows_renderer_reaches_every_wild_page(monkeypatch):
    """`image.wild_rows=renderer` is passed to every wild page's conventions; an unknown value is refused by name."""
    import torch

    from ecgalign.data.errors import InputError
    from ecgalign.tasks import ecg_scan

    seen = []
    real = ecg_scan.sample_wild_config
    monkeypatch.setattr(ecg_scan, "sample_wild_config",
                        lambda seed, **kw: seen.append(kw.get("rows")) or real(seed, **kw))
    x = torch.randn(2 * ecg_scan.WILD_GROUP, 12, 1000).cumsum(-1) * 0.02
    for rows in ("renderer", "random"):
        seen.clear()
        task = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=wild",
                                                                  f"image.wild_rows={rows}"]), 16, 16).train()
        task._render(x, torch.Generator().manual_seed(3))
        assert seen == [rows, rows]
    with pytest.raises(InputError, match="wild_rows"):
        load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=wild", "image.wild_rows=aligned"])


def test_print_dpi_draws_pages_at_print_resolution_and_resizes_them_as_image_files():
    """`image.print_dpi` draws each group of WILD_GROUP training pages as a US Letter page at a dpi from the
    range and shrinks it with `fit_images` (what `image_tensor` does to a PNG): the same pixels as rendering
    that page and letterboxing it, traces fainter than on a page drawn at the training size (the downscale
    the encoder meets on scanned and foreign printouts), evaluation at the range's midpoint, and a recipe
    without it drawing exactly what it drew before. Bad ranges are refused by name."""
    import torch

    from ecgalign.data.errors import InputError
    from ecgalign.render import RenderConfig, Renderer, fit_images, image_tensor
    from ecgalign.tasks import ecg_scan

    x = torch.randn(ecg_scan.WILD_GROUP + 3, 12, 1000).cumsum(-1) * 0.02
    recipe = load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=light", "image.print_dpi=[30,40]"])
    task = ecg_scan.ECGScanTask(recipe, 16, 16).train()
    g = torch.Generator().manual_seed(7)
    pages = task._render(x, g)
    assert pages.shape == (len(x), 3, 96, 128)
    seeds, groups = _replay_print_draws(len(x), 7, (30, 40))
    for s, e, dpi in groups:
        big = Renderer(RenderConfig.letter(dpi), device="cpu").render(x[s:e], 100, augment="light", seed=seeds[s:e],
                                                                      output="float").images
        assert big.shape[-1] == round(11 * dpi)
        assert torch.allclose(pages[s:e], fit_images(big, (96, 128)), atol=1e-6)
        assert torch.allclose(fit_images(big[:1], (96, 128))[0], image_tensor(big[0], (96, 128)), atol=1e-6)
    native = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=none"]), 16, 16).eval()
    shrunk = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=none",
                                                                "image.print_dpi=[30,40]"]), 16, 16).eval()
    ink_native, ink_shrunk = native._render(x, None).min(1).values, shrunk._render(x, None).min(1).values
    assert ink_native.amin(dim=(1, 2)).max() < 0.2 < ink_shrunk.amin(dim=(1, 2)).min()  # faint shrunk traces
    assert shrunk.eval_dpi() == 35.0
    mid = Renderer(RenderConfig.letter(35), device="cpu").render(x[:4], 100, augment="none", seed=0, output="float")
    assert torch.allclose(shrunk._render(x[:4], None), fit_images(mid.images, (96, 128)), atol=1e-6)
    plain = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=light"]), 16, 16).train()
    again = plain._render(x, torch.Generator().manual_seed(7))  # no print_dpi: the old draws, at the page size
    direct = Renderer(plain.render_config, device="cpu").render(x, 100, augment="light", seed=seeds, output="float")
    assert torch.equal(again, direct.images)
    for bad in ("[0,40]", "[50,40]", "[30]", "abc", "[30,700]", "[10,40]"):
        with pytest.raises(InputError, match="print_dpi"):
            load_recipe("ecg-scan", sets=[*TINY_SCAN, f"image.print_dpi={bad}"])


def _replay_print_draws(n: int, seed: int, dpi: tuple[int, int]) -> tuple[list[int], list[tuple[int, int, int]]]:
    """The draws of ``ECGScanTask._render`` with ``image.print_dpi=dpi`` replayed from a generator seeded ``seed``:
    the n image seeds first, then one dpi per group of ``WILD_GROUP`` images; groups as (start, end, dpi)."""
    import torch

    from ecgalign.tasks import ecg_scan

    g = torch.Generator().manual_seed(seed)
    seeds = torch.randint(0, 2**31 - 1, (n,), generator=g).tolist()
    n_groups = -(-n // ecg_scan.WILD_GROUP)
    dpis = [round(dpi[0] + (dpi[1] - dpi[0]) * u) for u in torch.rand(n_groups, generator=g).tolist()]
    return seeds, [(k * ecg_scan.WILD_GROUP, min(n, (k + 1) * ecg_scan.WILD_GROUP), d) for k, d in enumerate(dpis)]


def test_ink_pages_are_the_ink_maps_of_the_drawn_pages():
    """`image.ink`: the encoder reads the ink map (`ink_images`) of each drawn page, at print resolution (shrunk by
    max pooling) or at the training size, in training and evaluation; the card records it; a non-boolean is
    refused by name."""
    import torch

    from ecgalign.data.errors import InputError
    from ecgalign.render import RenderConfig, Renderer, ink_images
    from ecgalign.tasks import ecg_scan

    x = torch.randn(ecg_scan.WILD_GROUP + 3, 12, 1000).cumsum(-1) * 0.02
    task = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=light", "image.ink=true",
                                                               "image.print_dpi=[30,40]"]), 16, 16).train()
    g = torch.Generator().manual_seed(7)
    pages = task._render(x, g)
    seeds, groups = _replay_print_draws(len(x), 7, (30, 40))
    for s, e, dpi in groups:
        big = Renderer(RenderConfig.letter(dpi), device="cpu").render(x[s:e], 100, augment="light", seed=seeds[s:e],
                                                                      output="float").images
        assert torch.allclose(pages[s:e], ink_images(big, (96, 128)), atol=1e-6)
    assert pages.amin(dim=(1, 2, 3)).max() == 0.0  # full ink on every page, where a plain shrink is faint
    assert task.card_fields()["ink"] is True
    native = ecg_scan.ECGScanTask(load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.augment=none", "image.ink=true"]),
                                  16, 16).eval()
    drawn = Renderer(native.render_config, device="cpu").render(x[:4], 100, augment="none", seed=0, output="float")
    assert torch.equal(native._render(x[:4], None), ink_images(drawn.images, (96, 128)))
    with pytest.raises(InputError, match="image.ink"):
        load_recipe("ecg-scan", sets=[*TINY_SCAN, "image.ink=sometimes"])
