from echo_cli.stats import wilson_interval


def test_wilson_interval_known_values():
    low, high = wilson_interval(990, 1000)
    assert round(low, 4) == 0.9817 and round(high, 4) == 0.9946


def test_wilson_interval_edges_stay_inside_zero_one():
    assert wilson_interval(0, 100)[0] == 0.0 and wilson_interval(0, 100)[1] > 0.0
    assert wilson_interval(100, 100)[1] == 1.0 and wilson_interval(100, 100)[0] < 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
