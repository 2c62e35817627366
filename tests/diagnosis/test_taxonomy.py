from promptmill.diagnosis import CATEGORIES, diagnose, language
from promptmill.diagnosis.data import load_run
from promptmill.diagnosis.taxonomy import Classifier


def _by_input(d):
    return {e["input"]: c["category"] for c in d.categories for e in c["examples"]}


def _categories_by_input(store, run_id):
    data = load_run(store, run_id)
    classifier = Classifier(data)
    return {r.input_text: classifier.classify(r)[0] for r in data.failures}


def test_every_labelled_category_is_detected(store, labelled_run):
    found = _categories_by_input(store, labelled_run)
    assert found == {
        "superb acting": "extra_text", "dreadful": "wrong_label",
        "terrible pacing": "wrong_label", "meh": "wrong_label", "not bad": "format_violation",
        "so so": "empty", "hateful": "refusal", "long review": "truncated",
        "crash me": "call_error"}


def test_free_text_categories(store, free_text_run):
    found = _categories_by_input(store, free_text_run)
    assert found == {"q1": "wrong_language", "q2": "wrong_language", "q3": "partial",
                     "q4": "wrong_answer"}


def test_counts_rates_and_examples(store, labelled_run):
    d = diagnose(labelled_run, store=store)
    assert d.n == 15 and d.n_failures == 9
    counts = {c["category"]: c["count"] for c in d.categories}
    assert counts["wrong_label"] == 3 and sum(counts.values()) == 9
    wrong = next(c for c in d.categories if c["category"] == "wrong_label")
    assert wrong["share"] == 3 / 9 and wrong["share_low"] < 1 / 3 < wrong["share_high"]
    assert wrong["rate"] == 3 / 15
    assert wrong["detail"]["pair"] == "'negative' answered as 'positive'"
    assert all(c["description"] == CATEGORIES[c["category"]] for c in d.categories)
    assert "said 'positive', expected 'negative'" in wrong["examples"][0]["why"]


def test_confusion_matrix_counts_every_labelled_answer(store, labelled_run):
    matrix = diagnose(labelled_run, store=store).confusion
    assert matrix["labels"] == ["negative", "neutral", "positive"]
    rows = dict(zip(matrix["labels"], matrix["matrix"], strict=True))
    # columns: negative, neutral, positive, (other); the crashed call is left out
    assert rows["negative"] == [2, 0, 2, 1]
    assert rows["neutral"] == [1, 2, 0, 1]
    assert rows["positive"] == [0, 0, 3, 2]  # "not bad" and the cut-off review


def test_refusal_with_the_right_answer_is_extra_text_not_refusal(store):
    from crafted import evaluate_crafted

    table = {"a": ("yes", "I'm sorry, but yes"), "b": ("no", "no"), "c": ("yes", "yes"),
             "d": ("no", "no")}
    run = evaluate_crafted(store, table, "Answer yes or no.").run_id
    assert _categories_by_input(store, run) == {"a": "extra_text"}


def test_language_detection():
    assert language.detect("le chat est sur la table") == "fr"
    assert language.detect("the cat is on the table") == "en"
    assert language.detect("Paris") is None  # too short to name a language
    assert language.script_of("Собака") == "Cyrillic"
    assert language.mismatch("Paris", "the city is Paris") is None
    assert language.mismatch("東京", "Tokyo") == ("Latin", "Han")
