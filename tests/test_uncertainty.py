"""Bootstrap intervals and paired comparisons: hand-made confusion matrices with known answers."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from cityseg_lib.evaluate.uncertainty import (
    Difference,
    Interval,
    bootstrap_ci,
    class_iou_intervals,
    compare_groups,
    miou_from_matrix,
    miou_of_resamples,
    paired_difference,
    pixel_accuracy_from_matrix,
    resample_indices,
    seed_spread,
)
from cityseg_lib.evaluate.intervals import expanded_level, t_quantile
from cityseg_lib.evaluate.wording import format_interval, format_spread, verdict

C = 4


def _scores_from_matrix():
    """The metrics module's scorer, wherever the reorganisation has put it."""
    for name in ("cityseg_lib.train.metrics", "cityseg_lib.metrics", "cityseg_lib.evaluate.metrics"):
        try:
            return importlib.import_module(name).scores_from_matrix
        except ModuleNotFoundError:
            continue
    pytest.skip("no metrics module with scores_from_matrix found")


def _perfect(n: int, pixels: int = 100) -> np.ndarray:
    """n images, every pixel right: ``pixels`` of each class on the diagonal."""
    m = np.zeros((n, C, C + 1), dtype=np.int64)
    m[:, np.arange(C), np.arange(C)] = pixels
    return m


def _all_wrong(n: int, pixels: int = 100) -> np.ndarray:
    """n images, every pixel of class c predicted as c+1 (the last class as void): IoU 0 everywhere."""
    m = np.zeros((n, C, C + 1), dtype=np.int64)
    m[:, np.arange(C), np.arange(C) + 1] = pixels
    return m


def _noisy_runs(n: int = 80, seed: int = 0, gap: float = 0.03) -> tuple[np.ndarray, np.ndarray]:
    """Two runs sharing per-image difficulty (strongly correlated), run a slightly better.

    Image i has accuracy ``q_i`` (uniform 0.2..0.9) for run b and ``q_i + gap`` for run a;
    the misses go to the next class, so IoU tracks accuracy.
    """
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.2, 0.9, size=n)
    sizes = rng.integers(500, 5000, size=(n, C))

    def run(acc: np.ndarray) -> np.ndarray:
        m = np.zeros((n, C, C + 1), dtype=np.int64)
        right = np.round(sizes * acc[:, None]).astype(np.int64)
        m[:, np.arange(C), np.arange(C)] = right
        m[:, np.arange(C), (np.arange(C) + 1) % C] = sizes - right
        return m

    return run(q + gap), run(q)


def test_miou_hand_computed():
    # class 0: TP 3, FN 1 (void) + 1 (->1), FP 2 (from class 1); class 1: TP 4, FN 2, FP 1
    mat = np.array([[3, 1, 1], [2, 4, 0]])
    iou0, iou1 = 3 / (3 + 2 + 2), 4 / (4 + 1 + 2)
    assert miou_from_matrix(mat) == pytest.approx((iou0 + iou1) / 2)
    assert pixel_accuracy_from_matrix(mat) == pytest.approx(7 / 11)
    # a class with no pixel and no prediction is NaN and skipped, not counted as 0
    empty = np.array([[5, 0, 0, 0], [0, 0, 0, 0], [0, 0, 5, 0]])
    assert miou_from_matrix(empty) == 1.0
    assert math.isnan(miou_from_matrix(np.zeros((3, 4), dtype=np.int64)))


def test_agrees_with_scores_from_matrix():
    scores_from_matrix = _scores_from_matrix()
    rng = np.random.default_rng(3)
    per_image = rng.integers(0, 50, size=(30, 19, 20))
    per_image[:, 7, :] = 0  # an absent class
    per_image[:, :, 7] = 0
    per_image[:, :, 19] = rng.integers(0, 400, size=(30, 19))  # plenty of void predictions
    total = per_image.sum(axis=0)
    expected = scores_from_matrix(total)
    assert miou_from_matrix(total) == pytest.approx(expected.miou, rel=1e-12)
    assert pixel_accuracy_from_matrix(total) == pytest.approx(expected.pixel_accuracy, rel=1e-12)
    assert bootstrap_ci(per_image, n_boot=50).value == pytest.approx(expected.miou, rel=1e-12)


def test_resamples_match_explicit_sums():
    a, _ = _noisy_runs(n=25)
    idx = resample_indices(25, n_boot=40, seed=1)
    fast = miou_of_resamples(a, idx)
    slow = np.array([miou_from_matrix(a[row].sum(axis=0)) for row in idx])
    np.testing.assert_allclose(fast, slow, rtol=1e-12)
    # identity resample reproduces the full score exactly
    assert miou_of_resamples(a, np.arange(25)[None])[0] == miou_from_matrix(a.sum(axis=0))


def test_resampling_at_the_full_profiles_size():
    # (speed is a benchmark matter, not a test's: here only shape and finiteness at N=500, B=2000)
    rng = np.random.default_rng(0)
    per_image = rng.integers(0, 10_000, size=(500, 19, 20))
    out = miou_of_resamples(per_image, resample_indices(500, n_boot=2000, seed=0))
    assert out.shape == (2000,) and np.isfinite(out).all()


def test_interval_contains_estimate_and_is_deterministic():
    a, _ = _noisy_runs()
    iv = bootstrap_ci(a, n_boot=1000, seed=5)
    assert isinstance(iv, Interval)
    assert iv.low < iv.value < iv.high
    assert iv.high - iv.low > 0.01  # per-image accuracy varies a lot, so the interval is not tiny
    assert (iv.n_images, iv.n_boot) == (80, 1000)
    assert bootstrap_ci(a, n_boot=1000, seed=5) == iv
    assert bootstrap_ci(a, n_boot=1000, seed=6) != iv
    wider = bootstrap_ci(a, n_boot=1000, seed=5, level=0.99)
    assert wider.low <= iv.low and wider.high >= iv.high


def test_one_image_gives_a_point_interval():
    a, _ = _noisy_runs(n=1)
    iv = bootstrap_ci(a, n_boot=200)
    assert iv.low == iv.high == iv.value == miou_from_matrix(a[0])


def test_identical_runs_are_unresolved_with_zero_difference():
    a, _ = _noisy_runs()
    d = paired_difference(a, a.copy(), n_boot=500)
    assert d.difference == 0.0 and d.low == 0.0 and d.high == 0.0
    assert not d.resolved
    assert verdict(d, "U-Net", "SimpleFCN") == (
        "U-Net vs SimpleFCN: 0.0 mIoU points (95% CI 0.0 to 0.0); the difference is unresolved at this validation size."
    )


def test_perfect_vs_all_wrong_is_resolved_with_the_right_sign():
    good, bad = _perfect(10), _all_wrong(10)
    d = paired_difference(good, bad, n_boot=300)
    assert (d.a, d.b, d.difference, d.low, d.high) == (1.0, 0.0, 1.0, 1.0, 1.0)
    assert d.resolved
    r = paired_difference(bad, good, n_boot=300)
    assert r.difference == -1.0 and r.high == -1.0 and r.resolved
    assert verdict(r, "Bad", "Good") == "Good beats Bad by 100.0 mIoU points (95% CI 100.0 to 100.0)."
    # a lower-case label that opens the sentence gets its capital, and only there
    assert verdict(d, "'replace' augmentation", "no augmentation").startswith("'replace' augmentation beats no")
    assert verdict(r, "'replace' augmentation", "no augmentation").startswith("No augmentation beats 'replace'")


def test_paired_interval_is_narrower_than_unpaired_on_correlated_runs():
    a, b = _noisy_runs(gap=0.02)
    d = paired_difference(a, b, n_boot=1000, seed=0)
    assert d.resolved and d.low > 0
    assert d.low <= d.difference <= d.high
    idx_a = resample_indices(len(a), 1000, seed=0)
    idx_b = resample_indices(len(b), 1000, seed=1)  # independent draws: the unpaired bootstrap
    unpaired = miou_of_resamples(a, idx_a) - miou_of_resamples(b, idx_b)
    lo, hi = np.percentile(unpaired, [2.5, 97.5])
    assert (d.high - d.low) * 3 < hi - lo
    assert lo < 0 < hi  # unpaired, the same gap would not even be resolved


def test_mismatched_inputs_raise():
    a, b = _noisy_runs(n=10)
    with pytest.raises(ValueError, match="same images"):
        paired_difference(a, b[:9])
    with pytest.raises(ValueError, match="shape"):
        bootstrap_ci(np.zeros((3, 4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="same images"):
        compare_groups([a, a], [b, b[:9]])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(a, level=95)


def test_seed_spread():
    assert seed_spread([0.3, 0.5, 0.4]) == pytest.approx(
        {"mean": 0.4, "std": 0.1, "min": 0.3, "max": 0.5, "n": 3})
    assert seed_spread([0.42]) == {"mean": 0.42, "std": 0.0, "min": 0.42, "max": 0.42, "n": 1}
    assert format_spread(seed_spread([0.3, 0.5, 0.4])) == "40.0% ± 10.0 (3 seeds, range 30.0-50.0)"
    with pytest.raises(ValueError):
        seed_spread([])


def test_compare_groups_pools_seeds_and_checks_agreement():
    runs = [_noisy_runs(seed=0, gap=g) for g in (0.02, 0.03, 0.025)]
    group_a, group_b = [r[0] for r in runs], [r[1] for r in runs]
    d = compare_groups(group_a, group_b, n_boot=500)
    pooled = paired_difference(sum(group_a), sum(group_b), n_boot=500)
    assert (d.difference, d.low, d.high) == (pooled.difference, pooled.low, pooled.high)
    assert len(d.seed_differences) == 3 and all(x > 0 for x in d.seed_differences)
    assert d.seeds_agree and d.resolved and d.n_seeds_agreeing == 3
    assert d.spread_a["n"] == 3 and d.spread_a["mean"] > d.spread_b["mean"]
    assert "3 of 3 seeds agree" in verdict(d, "U-Net", "SimpleFCN")

    # one seed where b wins by a lot: the pooled interval still excludes zero, the seeds do not agree
    flipped = _noisy_runs(seed=0, gap=-0.01)
    d2 = compare_groups(group_a[:2] + [flipped[0]], group_b[:2] + [flipped[1]], n_boot=500)
    assert d2.excludes_zero and d2.seeds_agree is False and not d2.resolved
    assert d2.n_seeds_agreeing == 2

    single = compare_groups([group_a[0]], [group_b[0]], n_boot=500)
    assert single.seeds_agree is None and single.resolved == single.excludes_zero

    # unequal seed counts: every a_i is compared with every b_j
    uneven = compare_groups(group_a, group_b[:2], n_boot=200)
    assert len(uneven.seed_differences) == 6 and (uneven.n_seeds_a, uneven.n_seeds_b) == (3, 2)
    assert "of 6 seed pairs agree" in verdict(uneven, "U-Net", "SimpleFCN")
    # as many runs, but not of the same seeds: no run has a partner, so every a_i meets every b_j
    crossed = compare_groups(group_a, group_b, n_boot=200, paired_seeds=False)
    assert len(crossed.seed_differences) == 9 and (crossed.n_seeds_a, crossed.n_seeds_b) == (3, 3)
    assert "of 9 seed pairs agree" in verdict(crossed, "U-Net", "SimpleFCN")


def test_one_image_never_resolves_a_difference():
    """With one validation image every resample is that image: the interval has zero width whatever the
    runs' noise, so even a clear gap on that image is no finding; two images can resolve one."""
    good, bad = _perfect(1), _all_wrong(1)
    d = paired_difference(good, bad, n_boot=200)
    assert d.low == d.high == d.difference == 1.0 and d.excludes_zero and not d.resolved
    assert verdict(d, "A", "B") == ("A vs B: 100.0 mIoU points (95% CI 100.0 to 100.0); the difference is "
                                    "unresolved at this validation size.")
    assert not compare_groups([good], [bad], n_boot=200).resolved
    assert not compare_groups([good, good], [bad, bad], n_boot=200).resolved  # the seeds agree; one image still
    assert paired_difference(_perfect(2), _all_wrong(2), n_boot=200).resolved


def test_compare_groups_matches_a_single_run_with_the_run_of_its_seed():
    """A variant run once against 3 seeds: the difference and its interval are the variant's against the
    seed it was trained with; every seed of the other side still has to lie on the same side of it."""
    b0, b1, b2 = (_noisy_runs(seed=0, gap=g)[0] for g in (0.06, 0.0, 0.02))  # seed 0 of the main config is lucky
    variant = _noisy_runs(seed=0, gap=0.07)[0]  # seed 0 of the variant, a point above seed 0 of the main
    d = compare_groups([variant], [b0, b1, b2], n_boot=500, matched=(0, 0), matched_seed=0)
    alone = paired_difference(variant, b0, n_boot=500)
    assert (d.difference, d.low, d.high) == (alone.difference, alone.low, alone.high) and d.matched_seed == 0
    pooled = compare_groups([variant], [b0, b1, b2], n_boot=500)
    assert pooled.matched_seed is None and pooled.difference > 3 * d.difference > 0  # seed 0's luck, pooled
    assert len(d.seed_differences) == 3 and d.seeds_agree and d.resolved
    assert ", seed 0 against seed 0; 3 of 3 seed pairs agree)" in verdict(d, "augment", "none")
    # the single run on side b, matched with a's seed 2
    rev = compare_groups([b0, b1, b2], [variant], n_boot=500, matched=(2, 0), matched_seed=2)
    assert rev.difference == paired_difference(b2, variant, n_boot=500).difference < 0 and rev.matched_seed == 2
    # a variant between the seeds: its own seed's run is below it, another seed above: unresolved
    between = compare_groups([_noisy_runs(seed=0, gap=0.04)[0]], [b1, b0], n_boot=500, matched=(0, 0), matched_seed=1)
    assert between.excludes_zero and between.seeds_agree is False and not between.resolved
    with pytest.raises(ValueError, match="outside groups of 1 and 3 runs"):
        compare_groups([variant], [b0, b1, b2], matched=(0, 3))


def test_pixel_accuracy_metric():
    a, _ = _noisy_runs()
    iv = bootstrap_ci(a, n_boot=300, metric="pixel_accuracy")
    assert iv.value == pytest.approx(pixel_accuracy_from_matrix(a.sum(axis=0))) and iv.low < iv.value < iv.high
    with pytest.raises(ValueError, match="metric"):
        bootstrap_ci(a, n_boot=10, metric="dice")


def test_verdict_sentences():
    seeds = dict(seed_differences=(0.03, 0.05, 0.04), n_seeds_a=3, n_seeds_b=3)
    win = Difference(a=0.5, b=0.458, difference=0.042, low=0.011, high=0.073, resolved=True,
                     seeds_agree=True, **seeds)
    assert verdict(win, "U-Net", "SimpleFCN") == (
        "U-Net beats SimpleFCN by 4.2 mIoU points (95% CI 1.1 to 7.3; 3 of 3 seeds agree).")
    assert verdict(win, "U-Net", "SimpleFCN", metric="") == (
        "U-Net beats SimpleFCN by 4.2 points (95% CI 1.1 to 7.3; 3 of 3 seeds agree).")
    # the winner is named first whatever the order of the arguments
    lose = Difference(a=0.458, b=0.5, difference=-0.042, low=-0.073, high=-0.011, resolved=True)
    assert verdict(lose, "SimpleFCN", "U-Net") == "U-Net beats SimpleFCN by 4.2 mIoU points (95% CI 1.1 to 7.3)."
    unresolved = Difference(a=0.5, b=0.492, difference=0.008, low=-0.015, high=0.030, resolved=False)
    assert verdict(unresolved, "U-Net", "SimpleFCN") == (
        "U-Net vs SimpleFCN: 0.8 mIoU points (95% CI -1.5 to 3.0); "
        "the difference is unresolved at this validation size.")
    disagree = Difference(a=0.5, b=0.458, difference=0.042, low=0.011, high=0.073, resolved=False,
                          seed_differences=(0.03, 0.05, -0.01), seeds_agree=False, n_seeds_a=3, n_seeds_b=3)
    assert verdict(disagree, "U-Net", "SimpleFCN") == (
        "U-Net vs SimpleFCN: 4.2 mIoU points (95% CI 1.1 to 7.3); the interval excludes zero "
        "but the seeds disagree (2 of 3 agree in sign), so the difference is unresolved.")
    for sentence in map(lambda d: verdict(d, "A", "B"), (win, lose, unresolved, disagree)):
        assert "significant" not in sentence and "clearly" not in sentence
    # a resolved difference whose bound rounds to 0.0 at one decimal shows that bound's first digit
    # (the demo build's AdamW - Adam: 0.7 points, interval 0.04 to 1.5), never "0.0 to 1.5"
    near = Difference(a=0.207, b=0.200, difference=0.0074, low=0.00041, high=0.0150, resolved=True)
    assert verdict(near, "AdamW", "Adam") == "AdamW beats Adam by 0.7 mIoU points (95% CI 0.04 to 1.5)."
    flip = Difference(a=0.2, b=0.207, difference=-0.0074, low=-0.0150, high=-0.00041, resolved=True)
    assert verdict(flip, "Adam", "AdamW") == "AdamW beats Adam by 0.7 mIoU points (95% CI 0.04 to 1.5)."
    tie = Difference(a=0.2, b=0.2, difference=-0.00002, low=-0.004, high=0.004, resolved=False)
    assert verdict(tie, "A", "B").startswith("A vs B: -0.002 mIoU points (95% CI -0.4 to 0.4)")


def test_format_interval():
    iv = Interval(value=0.3124, low=0.2801, high=0.3449, n_images=500, n_boot=2000)
    assert format_interval(iv) == "31.2% (95% CI 28.0-34.5)"
    assert format_interval(Interval(0.5, 0.45, 0.55, 10, 100, level=0.9)) == "50.0% (90% CI 45.0-55.0)"


def test_t_quantile_matches_the_tables():
    # two-sided 95% and 99% critical values of Student's t (any statistics table)
    for df, t975, t995 in [(1, 12.7062, 63.6567), (4, 2.7764, 4.6041), (15, 2.1314, 2.9467), (499, 1.9647, 2.5857)]:
        assert t_quantile(0.975, df) == pytest.approx(t975, abs=2e-4)
        assert t_quantile(0.995, df) == pytest.approx(t995, abs=2e-3)
    assert t_quantile(0.5, 7) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        t_quantile(0.4, 5)


def test_expanded_interval_widens_on_few_images_and_not_on_many():
    # Hesterberg's expansion: tails at sqrt(n/(n-1)) * t(n-1) instead of 1.96
    assert expanded_level(0.95, 16) == pytest.approx(0.97229, abs=1e-4)  # percentiles 1.39 and 98.61
    assert expanded_level(0.95, 500) == pytest.approx(0.95078, abs=1e-4)
    assert expanded_level(0.95, 1) == 0.95
    two, _ = _noisy_runs(n=2)  # t(1): the expansion reaches the extremes, min and max of the resamples
    iv2 = bootstrap_ci(two, n_boot=300, seed=2)
    samples2 = miou_of_resamples(two, resample_indices(2, 300, seed=2))
    assert (iv2.low, iv2.high) == (samples2.min(), samples2.max())
    a, _ = _noisy_runs(n=16)
    pct = bootstrap_ci(a, n_boot=2000, seed=1, method="percentile")
    exp = bootstrap_ci(a, n_boot=2000, seed=1)
    assert exp.method == "expanded" and pct.method == "percentile"
    assert exp.low < pct.low < pct.value < pct.high < exp.high  # same resamples, wider tails
    assert exp.level == pct.level == 0.95  # the nominal level is what the interval claims
    lo, hi = np.percentile(miou_of_resamples(a, resample_indices(16, 2000, seed=1)), [1.3855, 98.6145])
    assert (exp.low, exp.high) == pytest.approx((lo, hi), abs=2e-4)
    many, _ = _noisy_runs(n=500)
    e, p = bootstrap_ci(many, n_boot=2000), bootstrap_ci(many, n_boot=2000, method="percentile")
    assert e.high - e.low == pytest.approx(p.high - p.low, rel=0.02)
    d = paired_difference(*_noisy_runs(n=16), n_boot=500, method="percentile")
    assert d.method == "percentile"
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci(a, n_boot=10, method="bca")


def test_class_iou_intervals_match_the_summed_matrix_and_widen_with_disagreement():
    """Per-class IoU with its interval over images: the value is the IoU of the summed matrix (as
    the metrics module scores it); a class every image gets equally right has a zero-width interval,
    one whose images disagree a wide one; an absent class is NaN."""
    rng = np.random.default_rng(0)
    n = 30
    m = np.zeros((n, C, C + 1), dtype=np.int64)
    for i in range(n):
        m[i, 0, 0] = 100  # class 0: always right
        hit = int(rng.integers(0, 101))  # class 1: right on some images, confused with 0 on others
        m[i, 1, 1], m[i, 1, 0] = hit, 100 - hit
        m[i, 2, 2], m[i, 2, C] = 50, 50  # class 2: half right, half void predictions
    value, low, high = class_iou_intervals(m, n_boot=500)
    ious = np.asarray(_scores_from_matrix()(m.sum(0)).class_iou, dtype=float)
    np.testing.assert_allclose(value, ious, rtol=1e-12)  # NaN for the absent class 3 on both sides
    assert math.isnan(value[3]) and math.isnan(low[3]) and math.isnan(high[3])
    assert low[2] == pytest.approx(0.5) and high[2] == pytest.approx(0.5)  # every image the same
    assert high[1] - low[1] > 0.05 and low[1] <= value[1] <= high[1]
    assert low[0] < value[0] < high[0] < 1  # class 0 takes class 1's misses as false positives, unevenly
