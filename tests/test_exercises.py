from helpers.exercises import check_answer as check


def test_check_hides_the_answer_until_tried_and_matches_within_tolerance():
    assert "not answered yet" in check("ex 1", None, 42) and "42" not in check("ex 1", None, 42)
    assert check("ex 1", 41.5, 42).startswith("ex 1: right")
    assert "not quite" in check("ex 1", 30, 42) and "42" in check("ex 1", 30, 42)
    assert check("ex 2", "NF4 ", "nf4").startswith("ex 2: right")
    assert "not quite" in check("ex 3", True, False)
    assert check("ex 4", 0, 0).startswith("ex 4: right")


def test_the_verdict_is_printed_once_in_a_notebook():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    result = shell.run_cell("from helpers.exercises import check_answer\ncheck_answer('ex 9', 1, 1)")
    assert result.success and result.result == "ex 9: right (1)"
    shell.display_formatter.ipython_display_formatter.enabled = True
    assert shell.display_formatter.ipython_display_formatter(result.result) is True  # handled: nothing shown
    InteractiveShell.clear_instance()
