from helpers.exercises import check_answer as check


def test_check_hides_the_answer_until_tried_and_matches_within_tolerance():
    assert "not answered yet" in check("ex 1", None, 42) and "42" not in check("ex 1", None, 42)
    assert check("ex 1", 41.5, 42).startswith("ex 1: right")
    assert "not quite" in check("ex 1", 30, 42) and "42" in check("ex 1", 30, 42)
    assert check("ex 2", "NF4 ", "nf4").startswith("ex 2: right")
    assert "not quite" in check("ex 3", True, False)
    assert check("ex 4", 0, 0).startswith("ex 4: right")
