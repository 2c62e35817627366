from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.metrics.human import WithReviewerComments, with_reviewer_comments
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.store.ratings import rating_feedback
from promptmill.store.workbench import add_rating
from promptmill.task import Example

EXAMPLES = [Example(str(i), {"input": f"q{i}"}, "yes") for i in range(4)]


def test_reviewer_comments_reach_the_feedback_and_leave_scores_alone(store):
    run = Evaluator(FakeModel(default="no"), get_metric("exact"), store,
                    progress=False).evaluate(EXAMPLES, Prompt(instruction="x"), task="yn").run_id
    exact = get_metric("exact")
    assert with_reviewer_comments(exact, rating_feedback(store, "yn")) is exact  # nothing rated yet
    add_rating(store, run, "1", 0.0, "answer with yes when the user agrees")
    metric = with_reviewer_comments(exact, rating_feedback(store, "yn"))
    assert isinstance(metric, WithReviewerComments) and metric.describe() == exact.describe()
    rated = metric.score("no", EXAMPLES[1])
    assert rated.value == exact.score("no", EXAMPLES[1]).value == 0.0
    assert "reviewers said: answer with yes when the user agrees" in rated.feedback
    assert metric.score("no", EXAMPLES[2]).feedback == exact.score("no", EXAMPLES[2]).feedback
    assert with_reviewer_comments(exact, rating_feedback(store, "other-task")) is exact
