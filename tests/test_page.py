"""The chat page in a real browser: Debian's Chromium driven by Playwright against a real
`rag serve` on 127.0.0.1. Each test saves a screenshot to test-output/screenshots/."""

import shutil

import pytest

from .conftest import REPO, call, running_server, serving_app
from .test_formats import HTML, MARKDOWN, write_pdf

pytestmark = pytest.mark.model
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed (script/test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Visit:
    """One browser tab on the server, recording every request and dialog."""

    def __init__(self, browser, server, javascript=True):
        self.context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.requests, self.dialogs = [], []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.goto(server.base + "/")

    def ask(self, question):
        self.page.fill("#question", question)
        self.page.press("#question", "Enter")

    def finish(self, name, server):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
        outside = [url for url in self.requests if not url.startswith(server.base + "/")]
        self.context.close()
        assert outside == [], "no request leaves 127.0.0.1"


@pytest.fixture
def visit(browser, server, request):
    visits = []

    def open_page(javascript=True):
        visits.append(Visit(browser, server, javascript))
        return visits[-1]

    yield open_page
    for number, opened in enumerate(visits):
        opened.finish(f"{request.node.name}-{number}", server)


def api_answer(server, question, history=()):
    status, _, body = call(server.base, "/api/ask", {"question": question, "history": list(history)})
    assert status == 200
    return body


def test_page_basics(visit):
    page = visit().page
    assert page.title() == "Ask the documents · rag"
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("#document-pane article[lang=fr] p").count() >= 20, "the article keeps its paragraphs"
    listed = page.locator("#documents a[data-document]")
    assert listed.count() == 1 and listed.get_attribute("aria-current") == "true"
    assert page.locator("#document-pane article").get_attribute("aria-label") == listed.inner_text()
    assert page.locator("label[for=question]").inner_text() == "Your question"
    assert "Answers are the documents’ own sentences" in page.locator("header p").first.inner_text()
    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"
    page.focus("#question")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "ask-button", "keyboard order: question, then Ask"
    chat, article = page.locator(".chat").bounding_box(), page.locator(".article-view").bounding_box()
    assert article["x"] > chat["x"] + chat["width"] - 1, "side by side on a wide screen"
    page.set_viewport_size({"width": 400, "height": 800})
    chat, article = page.locator(".chat").bounding_box(), page.locator(".article-view").bounding_box()
    assert article["y"] >= chat["y"] + chat["height"] - 1, "stacked on a narrow screen"


def test_ask_then_activate_citations_by_click_and_keyboard(visit, server):
    from playwright.sync_api import expect

    page = visit().page
    visit_question = "¿Qué exigió Putin sobre la OTAN?"  # answered confidently (0.89 when measured)
    expected = api_answer(server, visit_question)
    page.locator("#question").fill(visit_question)
    page.keyboard.press("Enter")
    answer = page.locator(".turn.answer[data-abstained=false]").last
    expect(answer).to_be_visible(timeout=60_000)
    expect(page.locator("#ask-button")).to_be_enabled()
    assert "formellement exclue" in answer.inner_text()

    first = answer.locator('[data-citation="1"]')
    first.click()
    mark = page.locator(".article-view mark")
    expect(mark).to_have_count(1)
    expect(mark).to_be_visible()
    expect(mark).to_be_in_viewport()
    assert mark.inner_text() == first.get_attribute("data-text")
    assert mark.inner_text() in [c["text"] for c in expected["citations"]]

    # Keyboard only: the second marker, focused and activated with Enter.
    second = answer.locator('[data-citation="2"]')
    if second.count():
        second.focus()
        page.keyboard.press("Enter")
        expect(mark).to_have_count(1)
        assert mark.inner_text() == second.get_attribute("data-text")

    # The conversation stays: a second question adds to it.
    page.locator("#question").fill("Qui a rencontré Vladimir Poutine ?")
    page.locator("#ask-button").click()
    expect(page.locator(".turn.answer:not(.pending)")).to_have_count(2, timeout=60_000)
    expect(page.locator(".turn.question")).to_have_count(2)


def test_an_off_topic_question_shows_an_abstention(visit):
    from playwright.sync_api import expect

    opened = visit()
    opened.ask("Who wrote Pride and Prejudice?")
    abstention = opened.page.locator(".turn.abstained[data-abstained=true]")
    expect(abstention).to_be_visible(timeout=60_000)
    assert "The documents do not say" in abstention.inner_text()
    assert opened.page.locator(".article-view mark").count() == 0


def test_markup_in_a_question_is_shown_as_text(visit):
    from playwright.sync_api import expect

    opened = visit()
    hostile = "<img src=x onerror=alert(1)>"
    opened.ask(hostile)
    expect(opened.page.locator(".turn.answer:not(.pending)")).to_have_count(1, timeout=60_000)
    assert opened.page.locator(".turn.question .text").inner_text() == hostile
    assert opened.page.locator("#conversation img").count() == 0
    assert opened.dialogs == []


def test_errors_appear_in_the_conversation(visit):
    from playwright.sync_api import expect

    opened = visit()
    page = opened.page
    page.route("**/api/ask", lambda route: route.fulfill(status=503, json={"detail": "still loading"}))
    opened.ask("What did Putin demand?")
    expect(page.locator(".turn.error")).to_contain_text("still loading", timeout=30_000)
    page.unroute("**/api/ask")
    page.route("**/api/ask", lambda route: route.abort())
    opened.ask("What did Putin demand?")
    expect(page.locator(".turn.error").last).to_contain_text("cannot be reached", timeout=30_000)
    expect(page.locator("#ask-button")).to_be_enabled()


def test_the_page_works_without_javascript(visit, server):
    from playwright.sync_api import expect

    page = visit(javascript=False).page
    question = "¿Qué exigió Putin sobre la OTAN?"
    expected = api_answer(server, question)
    page.fill("#question", question)
    page.click("#ask-button")  # a plain form post; the server renders the answer
    answer = page.locator(".turn.answer[data-abstained=false]")
    expect(answer).to_be_visible(timeout=60_000)
    assert answer.locator("[data-citation]").count() == len(expected["citations"])
    marks = page.locator(".article-view mark")
    assert sorted(marks.all_inner_texts()) == sorted(c["text"] for c in expected["citations"])
    first = answer.locator('[data-citation="1"]')
    sentence = f"s-{first.get_attribute('data-document')}-{first.get_attribute('data-sentence')}"
    first.click()  # a link to the sentence in the article
    assert page.url.endswith(f"#{sentence}")
    expect(page.locator(f"#{sentence}")).to_be_in_viewport()


def test_three_documents_answer_from_the_pdf_marked_in_it_and_a_removal_is_noticed(browser, tmp_path):
    import httpx
    from playwright.sync_api import expect

    pdf = write_pdf(tmp_path / "glaciers.pdf").read_bytes()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "bees.md").write_text(MARKDOWN, encoding="utf-8")
    (mine / "page.html").write_text(HTML, encoding="utf-8")
    (mine / "glaciers.pdf").write_bytes(pdf)
    with running_server(tmp_path, RAG_SEEDS_DIR=str(mine)) as server:
        opened = Visit(browser, server)
        page = opened.page
        listed = page.locator("#documents a[data-document]")
        assert sorted(listed.all_inner_texts()) == sorted(
            ["Bees in trouble", "Why honeybee colonies are collapsing", "Glacier report"]
        )
        assert page.locator("#document-pane article").count() == 1, "one document shown, the others on demand"
        opened.ask("How much of their volume did Swiss glaciers lose in 2026?")
        answer = page.locator(".turn.answer[data-abstained=false]")
        expect(answer).to_be_visible(timeout=60_000)
        expect(answer.locator(".sources")).to_contain_text("Glacier report")
        glacier_marker = answer.locator('[data-text*="three percent of their volume"]').first
        glacier_marker.click()
        mark = page.locator("#document-pane article[data-document=glaciers][lang=en] mark")
        expect(mark).to_have_count(1)
        expect(mark).to_be_in_viewport()
        assert "three percent of their volume" in mark.inner_text()
        expect(page.locator("#document-pane article")).to_have_attribute("aria-label", "Glacier report")
        expect(page.locator('#documents a[aria-current="true"]')).to_have_text("Glacier report")

        deleted = httpx.delete(f"{server.base}/api/documents/glaciers", timeout=60)
        assert deleted.status_code == 204
        expect(page.locator("#documents a[data-document]")).to_have_count(2, timeout=15_000)
        expect(page.locator("#document-notice")).to_contain_text("was removed")
        glacier_marker.click()
        expect(page.locator("#document-notice")).to_contain_text("no longer in the documents")
        expect(page.locator("#document-pane mark")).to_have_count(0)

        # Added again from the page, behind the API's checks: a bad file first.
        (tmp_path / "notes.odt").write_bytes(b"PK")
        page.set_input_files("#upload-file", str(tmp_path / "notes.odt"))
        page.click("#upload-button")
        expect(page.locator("#document-notice")).to_contain_text("Not added: notes.odt is not a")
        page.set_input_files("#upload-file", str(tmp_path / "glaciers.pdf"))
        page.click("#upload-button")
        expect(page.locator("#document-notice")).to_contain_text("Added “Glacier report”", timeout=60_000)
        expect(page.locator("#documents a[data-document]")).to_have_count(3)
        expect(page.locator("#document-pane article")).to_have_attribute("aria-label", "Glacier report")
        opened.finish("three-documents", server)


def test_a_follow_up_on_the_page_is_answered_from_the_right_sentence(visit):
    from playwright.sync_api import expect

    opened = visit()
    page = opened.page
    opened.ask("Who did Steve Witkoff meet yesterday?")
    expect(page.locator(".turn.answer:not(.pending)")).to_have_count(1, timeout=60_000)
    opened.ask("What did they discuss?")
    answers = page.locator(".turn.answer:not(.pending)")
    expect(answers).to_have_count(2, timeout=60_000)
    follow_up = answers.last
    # Whether to answer is decided on the follow-up alone: measured, the closest passage (0.09).
    assert follow_up.get_attribute("data-outcome") in ("answer", "closest")
    follow_up.locator('[data-text*="pour discuter de l’Ukraine"]').first.click()
    mark = page.locator("#document-pane mark")
    expect(mark).to_have_count(1)
    assert "pour discuter de l’Ukraine et d’autres questions" in mark.inner_text()


def test_a_generated_answer_is_shown_as_text_with_its_markers(browser, tmp_path):
    """With RAG_LLM_URL set (a recorded LLM server), the page shows the LLM's text as it is
    written (with script), markup in it as text, then its checked markers as citations that mark
    their sentence; with and without script."""
    from playwright.sync_api import expect

    from .test_generation import RecordedLLM, Reply, completion, free_port_in_range

    llm = RecordedLLM()
    with serving_app(llm.app, free_port_in_range()) as base:
        llm.base = base
        said = "Putin demanded <b>that Ukraine stay out of NATO</b> [1], and more [9]."
        reply = said + " He said so in Alaska, as the article reports in its first lines, to the press."
        with running_server(tmp_path, RAG_LLM_URL=base + "/v1", RAG_LLM_MODEL="smollm2") as server:
            for javascript in (True, False):
                llm.reply(Reply(completion(reply), gap=0.08))
                opened = Visit(browser, server, javascript)
                page = opened.page
                page.fill("#question", "¿Qué exigió Putin sobre la OTAN?")  # only confident answers are written
                page.click("#ask-button")
                if javascript:  # the checked text shows as it comes, as text
                    writing = page.locator(".turn.answer.pending")
                    expect(writing.locator(".who")).to_have_text("Writing from the documents…", timeout=60_000)
                    expect(writing.locator(".text")).to_contain_text("Putin demanded <b>that Ukraine")
                    assert writing.locator(".text b").count() == 0
                answer = page.locator('.turn.answer[data-mode="generated"]')
                expect(answer).to_be_visible(timeout=60_000)
                text = answer.locator(".text")
                expect(text).to_have_text(
                    "Putin demanded <b>that Ukraine stay out of NATO</b> [1], and more. "
                    "He said so in Alaska, as the article reports in its first lines, to the press."
                )
                assert text.locator("b").count() == 0, "the LLM's markup is text"
                assert answer.locator("[data-citation]").count() == 1, "the marker naming no sentence is gone"
                expect(answer.locator(".who")).to_have_text("Written from the documents")
                expect(page.locator("header p").first).to_contain_text("written by a language model")
                if javascript:
                    answer.locator('[data-citation="1"]').click()
                    mark = page.locator(".article-view mark")
                    expect(mark).to_have_count(1)
                    assert "formellement exclue" in mark.inner_text()
                else:
                    marks = page.locator(".article-view mark")
                    assert "formellement exclue" in " ".join(marks.all_inner_texts())
                if javascript:  # a reply that breaks off after checked text went on: kept, and said so
                    llm.reply(Reply(completion(reply + " " + reply), error_after=25))
                    page.fill("#question", "¿Qué exigió Putin sobre la OTAN?")
                    page.click("#ask-button")
                    stopped = page.locator(".turn.answer").last.locator(".stopped")
                    expect(stopped).to_have_text("The language model's reply was stopped here (llm-error).")
                opened.finish(f"generated-answer-{'script' if javascript else 'no-script'}", server)
                assert len(llm.requests) == 1, "one question, one request (reply() clears them)"


HOSTILE = "<img src=x onerror=alert(1)>"
# Questions on the bundled article with each outcome, as the default model's calibration decides.
OUTCOME_QUESTIONS = {
    "answer": "Qui a rencontré Vladimir Poutine ?",
    "closest": "What did Angela Merkel say about Putin?",
    "none": "Who wrote Pride and Prejudice?",
}


def made_answers(server):
    """An /api/ask body of each outcome, with real citations: for the page's rendering alone."""
    real = api_answer(server, OUTCOME_QUESTIONS["answer"])
    cited = real["citations"][:2]
    first = f"The documents may not say this directly; the closest passage is: {cited[0]['text']} [1]"
    return {
        "answer": {
            **real,
            "abstained": False,
            "confidence": 0.8731,
            "outcome": "answer",
            "resolved_question": f"{real['question']} Et {HOSTILE} ?",  # a follow-up's reading
        },
        "closest": {
            **real,
            "abstained": True,
            "answer": first,
            "citations": cited,
            "confidence": 0.4162,
            "outcome": "closest",
        },
        "none": {
            **real,
            "abstained": True,
            "answer": f"The documents do not say. They are about: {HOSTILE}.",
            "citations": [],
            "confidence": 0.0213,
            "outcome": "none",
        },
    }


def check_turn(turn, body):
    """The answer turn shows ``body``'s outcome: heading, list, markers and confidence."""
    outcome = body["outcome"]
    assert turn.get_attribute("data-outcome") == outcome
    assert turn.get_attribute("data-abstained") == ("false" if outcome == "answer" else "true")
    who = turn.locator(".who").inner_text().strip().lower()
    confidence = turn.locator(".confidence")
    if outcome == "none":
        assert who == "not in the documents" and "closest" not in (turn.get_attribute("class") or "")
        assert turn.locator(".closest, .closest-heading, [data-citation]").count() == 0
        assert confidence.count() == 0, "no confidence for nothing cited"
        assert turn.locator(".text").inner_text() == body["answer"], "as text"
        return
    if outcome == "closest":
        assert who == "closest passage" and "closest" in turn.get_attribute("class").split()
        heading = "Closest passage" if len(body["citations"]) == 1 else "Closest passages"
        assert turn.locator(".closest-heading").inner_text() == heading
        assert turn.locator(".text").inner_text() == "The documents may not say this directly."
        assert turn.inner_text().count(body["citations"][0]["text"]) == 1, "the first passage shown once"
        assert turn.locator(".closest li").count() == len(body["citations"])
    else:
        assert who != "not in the documents" and turn.locator(".closest-heading").count() == 0
    assert turn.locator("[data-citation]").count() == len(body["citations"])
    if body["confidence"] is None:
        assert confidence.count() == 0
    else:
        assert confidence.inner_text() == f"Confidence {body['confidence']:.2f}"
        assert "calibrated probability" in confidence.get_attribute("title")


def fulfilled_with(body):
    """A route handler answering ``body`` as plain JSON, as /api/ask answers without a stream."""
    return lambda route: route.fulfill(status=200, json=body)


def test_the_three_outcomes_look_different_with_their_confidence(visit, server):
    """The page's script on an answer of each outcome made to order (the calibration decides
    which real question gets which), then the marker of a closest passage marks it."""
    from playwright.sync_api import expect

    opened = visit()
    page = opened.page
    made = made_answers(server)
    for number, (outcome, body) in enumerate(made.items(), start=1):
        page.route("**/api/ask", fulfilled_with(body))
        opened.ask(f"Show me {outcome}")
        expect(page.locator(".turn.answer:not(.pending)")).to_have_count(number, timeout=30_000)
        page.unroute("**/api/ask")
        check_turn(page.locator(".turn.answer").last, body)
        read_as = page.locator(".turn.answer").last.locator(".read-as")
        if body["resolved_question"] == body["question"]:
            assert read_as.count() == 0, "the question read as it was asked: no line"
        else:
            assert read_as.inner_text() == f"Read as: {body['resolved_question']}", "as text"
    assert page.locator("#conversation img").count() == 0 and opened.dialogs == []
    closest = page.locator('.turn.answer[data-outcome="closest"]')
    closest.locator('[data-citation="1"]').click()
    mark = page.locator(".article-view mark")
    expect(mark).to_have_count(1)
    assert mark.inner_text() == made["closest"]["citations"][0]["text"]


def test_real_questions_of_each_outcome_with_and_without_javascript(visit, server):
    from playwright.sync_api import expect

    for javascript in (True, False):
        opened = visit(javascript=javascript)
        page = opened.page
        history = []  # the page asks each question with the conversation so far
        for number, (outcome, question) in enumerate(OUTCOME_QUESTIONS.items(), start=1):
            expected = api_answer(server, question, history)
            assert expected["outcome"] == outcome, f"{question!r} is {expected['outcome']} now, not {outcome}"
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": expected["answer"]}]
            page.fill("#question", question)
            if javascript:
                page.click("#ask-button")
                expect(page.locator(".turn.answer:not(.pending)")).to_have_count(number, timeout=60_000)
            else:  # the page again, with the conversation so far and this answer
                with page.expect_navigation(timeout=60_000):
                    page.click("#ask-button")
                expect(page.locator(".turn.answer:not(.earlier)")).to_have_count(1)
            check_turn(page.locator(".turn.answer").last, expected)


# Issue 32: a newcomer's first hour on the page.


def shown_markers(turn):
    """The marker labels of an answer's text, in the order shown."""
    return turn.locator(".text [data-citation]").all_inner_texts()


def test_markers_are_numbered_in_the_order_shown_with_and_without_javascript(visit, server):
    """The answer's sentences are shown in reading order; their markers read [1], [2]… in that
    order (the first shown was [2]), and the sources list the same numbers."""
    from playwright.sync_api import expect

    question = "Where did they meet?"  # measured: three citations, the best one first in the text
    expected = api_answer(server, question)
    in_text = [c["id"] for c in sorted(expected["citations"], key=lambda c: c["start"])]
    assert in_text != sorted(in_text), "its citations' ids are not in reading order"
    for javascript in (True, False):
        opened = visit(javascript=javascript)
        opened.page.fill("#question", question)
        opened.page.click("#ask-button")  # a plain form post without the script
        answer = opened.page.locator(".turn.answer[data-abstained=false]")
        expect(answer).to_be_visible(timeout=60_000)
        numbers = [f"[{n}]" for n in range(1, len(expected["citations"]) + 1)]
        assert shown_markers(answer) == numbers
        assert "".join(answer.locator(".sources li").all_inner_texts()).count("[") == len(numbers)
        sentences = answer.locator(".text [data-citation]")
        texts = [sentences.nth(n).get_attribute("data-text") for n in range(sentences.count())]
        assert sorted(texts) == sorted(c["text"] for c in expected["citations"]), "each citation once"


def test_the_document_pane_shows_its_title_once(visit):
    from rag.ingest.discover import read_document

    from .conftest import ARTICLE

    title = read_document(ARTICLE).title
    assert title.endswith("…"), "cut from the first sentence"
    pane = visit().page.locator("#document-pane")
    assert pane.inner_text().count(title.removesuffix("…")) == 1


def test_the_placeholder_fits_the_state_with_and_without_javascript(visit):
    from playwright.sync_api import expect

    for javascript in (True, False):
        page = visit(javascript=javascript).page
        assert page.get_attribute("#question", "placeholder") == "Ask a question about the documents"
        page.fill("#question", "Qui a rencontré Vladimir Poutine ?")
        page.click("#ask-button")
        expect(page.locator(".turn.answer:not(.pending)")).to_have_count(1, timeout=60_000)
        expect(page.locator("#question")).to_have_attribute("placeholder", "Ask a follow-up, or something new")


def test_a_new_answer_is_scrolled_into_view_with_and_without_javascript(visit):
    from playwright.sync_api import expect

    questions = [OUTCOME_QUESTIONS["none"], OUTCOME_QUESTIONS["closest"], "Where did they meet?"]  # the last, long
    for javascript in (True, False):
        page = visit(javascript=javascript).page
        page.set_viewport_size({"width": 420, "height": 500})  # a phone: a long answer is taller than the window
        for number, question in enumerate(questions, start=1):
            page.fill("#question", question)
            if javascript:
                page.click("#ask-button")
                expect(page.locator(".turn.answer:not(.pending), .turn.error")).to_have_count(number, timeout=60_000)
                assert page.locator(".turn.error").count() == 0, page.locator(".turn.error").all_inner_texts()
            else:  # the page again, at its new answer
                with page.expect_navigation(timeout=60_000):
                    page.click("#ask-button")
                assert page.url.endswith("/#latest")
        latest = page.locator(".turn.answer:not(.pending)").last
        expect(latest.locator(".who")).to_be_in_viewport()
        assert page.evaluate("window.scrollY") > 0, "the page scrolled down to it"


def test_an_abstention_reads_naturally_with_and_without_javascript(visit):
    from playwright.sync_api import expect

    for javascript in (True, False):
        page = visit(javascript=javascript).page
        page.fill("#question", OUTCOME_QUESTIONS["none"])
        page.click("#ask-button")
        text = page.locator('.turn.answer[data-outcome="none"] .text')
        expect(text).to_contain_text("They are about: ", timeout=60_000)
        assert "…." not in text.inner_text() and text.inner_text().endswith("…")


def test_sentences_in_another_language_say_why_with_and_without_javascript(visit):
    """Without an LLM server the answer quotes the article in French: an English question gets
    one quiet line saying so; a French question gets none."""
    from playwright.sync_api import expect

    for javascript in (True, False):
        page = visit(javascript=javascript).page
        for number, (question, noted) in enumerate(
            (("Who did Steve Witkoff meet?", True), ("Qui a rencontré Vladimir Poutine ?", False)), start=1
        ):
            page.fill("#question", question)
            page.click("#ask-button")
            answer = page.locator(".turn.answer:not(.pending):not(.earlier)").last
            expect(page.locator(".turn.answer:not(.pending)")).to_have_count(number, timeout=60_000)
            note = answer.locator(".language-note")
            if noted:
                expect(note).to_have_count(1)
                assert "Quoted from the documents as written, in French" in note.inner_text()
                assert "docs/generation.md" in note.inner_text()
            else:
                page.wait_for_timeout(500)  # the script's note would come by now
                assert note.count() == 0


def test_the_page_gets_ready_calmly_then_becomes_the_chat_with_and_without_javascript(browser, tmp_path):
    """A server still building its index: the page says what it is doing, no error, and turns
    into the chat by itself (the script polls /readyz; without it, a refresh every 5 s)."""
    import threading
    from types import SimpleNamespace

    from playwright.sync_api import expect

    from rag.http.app import create_app

    from .conftest import fake_engine
    from .test_generation import free_port_in_range

    for javascript in (True, False):
        engine = fake_engine(tmp_path / f"index-{javascript}")
        release = threading.Event()

        def held(*args, build=engine.build_index, release=release, **kwargs):
            release.wait(60)  # the start-up thread waits here while the page is looked at
            return build(*args, **kwargs)

        engine.build_index = held
        with serving_app(create_app(engine), free_port_in_range()) as base:
            try:
                opened = Visit(browser, SimpleNamespace(base=base), javascript)
                page = opened.page
                ready = page.locator("#getting-ready")
                expect(ready).to_contain_text("Getting ready: building the index from seeds/ (first run)")
                assert page.locator(".turn.error").count() == 0
                expect(page.locator("#question")).to_be_disabled()
            finally:
                release.set()
            expect(page.locator("#question")).to_be_enabled(timeout=20_000)
            expect(ready).to_have_count(0)
            expect(page.locator("#document-pane article")).to_have_count(1)
            opened.finish(f"getting-ready-{'script' if javascript else 'no-script'}", SimpleNamespace(base=base))
