"""The Pareto front and its figure."""

from itertools import pairwise

from mkd.report.plots import Point, pareto_figure, pareto_front


def test_front_keeps_only_undominated_points():
    pts = [Point("fast", 1000, 70), Point("slow_good", 10, 80), Point("dominated", 100, 65),
           Point("mid", 300, 75), Point("tie_slower", 500, 70)]
    assert [p.name for p in pareto_front(pts)] == ["fast", "mid", "slow_good"]


def test_figure_is_written(tmp_path):
    pts = {"a": [Point("x", 10, 50), Point("y", 1e4, 60)], "b": [Point("x", 10, 40)]}
    out = tmp_path / "p.png"
    pareto_figure(pts, out)
    assert out.stat().st_size > 1000


def test_labels_stay_inside_the_panel_in_score_order_and_apart():
    from mkd.report.plots import label_heights

    scores = [70.0, 70.1, 70.2, 90.0, 89.9, 60.0]
    heights = label_heights(scores, 55.0, 92.0, 0.1)
    assert all(0.0 <= h <= 1.0 for h in heights)
    ranked = [heights[i] for i in sorted(range(len(scores)), key=lambda i: scores[i])]
    assert all(b - a >= 0.1 - 1e-9 for a, b in pairwise(ranked))
    many = label_heights([50.0] * 40, 49.0, 51.0, 0.05)  # more labels than fit at that spacing: compressed
    assert max(many) <= 1.0 and min(many) >= 0.0 and len(set(many)) == 40
