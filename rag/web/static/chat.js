// The chat: asks /api/ask without leaving the page, keeps the conversation, and shows a cited
// sentence in the article when its marker is activated. Without this file the form posts to
// the server, which renders the same page with the answer (progressive enhancement).
"use strict";

(() => {
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const button = document.getElementById("ask-button");
  const conversation = document.getElementById("conversation");

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // never innerHTML: all text is escaped
    return node;
  }

  function turn(kind, who, text) {
    const item = element("li", `turn ${kind}`);
    item.append(element("p", "who", who), element("p", "text", text));
    conversation.append(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }

  function marker(citation, label) {
    const link = element("a", "cite", `[${citation.id}]`);
    link.href = `#s-${citation.document}-${citation.sentence}`;
    link.dataset.citation = String(citation.id);
    link.dataset.document = citation.document;
    link.dataset.sentence = String(citation.sentence);
    link.setAttribute("aria-label", `${label} ${citation.id}: show it in the article`);
    return link;
  }

  function showAnswer(item, answer) {
    const text = item.querySelector(".text");
    text.textContent = "";
    if (answer.abstained) {
      item.className = "turn answer abstained";
      item.dataset.abstained = "true";
      item.querySelector(".who").textContent = "Not in the documents";
      text.textContent = answer.answer;
      if (answer.citations.length) {
        const list = element("ul", "closest");
        for (const citation of answer.citations) {
          const entry = element("li");
          const passage = element("span", "", citation.text);
          passage.lang = "fr";
          entry.append(marker(citation, "Passage"), " ", passage);
          list.append(entry);
        }
        item.append(element("p", "closest-heading", "Closest passages"), list);
      }
      return;
    }
    item.className = "turn answer";
    item.dataset.abstained = "false";
    item.querySelector(".who").textContent = "From the documents";
    text.lang = "fr";
    // The answer text is the cited sentences in reading order, each followed by its marker.
    const reading = [...answer.citations].sort((a, b) =>
      a.document === b.document ? a.start - b.start : a.document < b.document ? -1 : 1);
    reading.forEach((citation, index) => {
      if (index) text.append(" ");
      text.append(citation.text, " ", marker(citation, "Citation"));
    });
  }

  function highlight(link) {
    const sentence = document.getElementById(`s-${link.dataset.document}-${link.dataset.sentence}`);
    if (!sentence) return;
    for (const old of document.querySelectorAll(".article-view mark")) old.replaceWith(...old.childNodes);
    for (const current of document.querySelectorAll('.cite[aria-current="true"]')) current.removeAttribute("aria-current");
    const mark = document.createElement("mark");
    mark.tabIndex = -1;
    mark.append(...sentence.childNodes);
    sentence.append(mark);
    link.setAttribute("aria-current", "true");
    sentence.scrollIntoView({ block: "center" });
  }

  conversation.addEventListener("click", (event) => {
    const link = event.target.closest("[data-citation]");
    if (!link) return;
    event.preventDefault(); // Enter on a focused link clicks it too
    highlight(link);
  });

  function setBusy(busy) {
    button.disabled = busy;
    button.textContent = busy ? "Asking…" : "Ask";
    form.setAttribute("aria-busy", String(busy));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || button.disabled) return;
    turn("question", "You", question);
    const item = turn("answer pending", "Searching the article", "");
    setBusy(true);
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question }),
      });
      if (response.status === 401) {
        form.submit(); // the API needs a key this page does not have: let the server render the answer
        return;
      }
      const body = await response.json().catch(() => null);
      if (response.ok && body) {
        showAnswer(item, body);
        input.value = "";
      } else {
        const detail = body && typeof body.detail === "string" ? body.detail : `status ${response.status}`;
        item.remove();
        turn("error", "Error", `The server could not answer: ${detail}`).setAttribute("role", "alert");
      }
    } catch {
      item.remove();
      turn("error", "Error", "The server cannot be reached. Is it running?").setAttribute("role", "alert");
    } finally {
      setBusy(false);
      input.focus();
    }
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
