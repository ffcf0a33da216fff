"""The benchmark scripts' arithmetic (their measurements need a GPU: benchmarks/gpu_check.sh)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_train  # noqa: E402


def test_grid_estimate_counts_every_run_and_epoch():
    rate = {"arch": "m", "b_ours_img_s": 100.0, "d_eval_ours_img_s": 1000.0}
    est = bench_train.grid_hours([rate], warmup=1, epochs=2, overhead_s={"m": 10.0})
    main = sampler = 0.0
    for n_train, n_held in ((1651, 413), (5994, 5794)):  # OCTDL, CUB-200-2011
        evaluate = (n_train + n_held) / 1000.0
        full = 3 * (n_train / 100.0 + evaluate) + 10.0
        # sampler runs: the warmup epoch trains on everything, the 2 fine-tuning epochs on half
        budget = (n_train / 100.0 + evaluate) + 2 * (0.5 * n_train / 100.0 + evaluate) + 10.0
        main += 5 * full
        sampler += full + 10 * budget
    assert est["main_grid_minutes"] == pytest.approx(main / 60.0)
    assert est["grid_minutes"] == pytest.approx((main + sampler) / 60.0)


def test_grid_estimate_adds_each_arch_and_its_own_overhead():
    a = {"arch": "a", "b_ours_img_s": 100.0, "d_eval_ours_img_s": 1000.0}
    b = {"arch": "b", "b_ours_img_s": 50.0, "d_eval_ours_img_s": 500.0}
    both = bench_train.grid_hours([a, b], overhead_s={"a": 5.0})
    one = [bench_train.grid_hours([r], overhead_s={"a": 5.0}) for r in (a, b)]
    assert both["grid_minutes"] == pytest.approx(sum(e["grid_minutes"] for e in one))
    # 32 runs per arch: (5 seeds + 1 scout + 2 samplers x 5 seeds) x 2 datasets
    assert one[0]["grid_minutes"] - bench_train.grid_hours([a])["grid_minutes"] == pytest.approx(32 * 5.0 / 60.0)
