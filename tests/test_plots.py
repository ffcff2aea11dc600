"""The Pareto front and its figure."""

from mkd.plots import Point, pareto_figure, pareto_front


def test_front_keeps_only_undominated_points():
    pts = [Point("fast", 1000, 70), Point("slow_good", 10, 80), Point("dominated", 100, 65),
           Point("mid", 300, 75), Point("tie_slower", 500, 70)]
    assert [p.name for p in pareto_front(pts)] == ["fast", "mid", "slow_good"]


def test_figure_is_written(tmp_path):
    pts = {"a": [Point("x", 10, 50), Point("y", 1e4, 60)], "b": [Point("x", 10, 40)]}
    out = tmp_path / "p.png"
    pareto_figure(pts, out)
    assert out.stat().st_size > 1000
