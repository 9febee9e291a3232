// The chat: asks /api/ask without leaving the page (streamed, so that an answer an LLM server
// writes shows as it is written), keeps the conversation, and shows a cited sentence in its
// document when its marker is activated. Documents load when shown
// (/page/documents/{id}); the list and the index's generation are checked every few seconds, so a
// new index (or a server that became ready) is noticed and no marker points at stale text.
// Without this file the form posts to the server, which renders the same page with the answer
// (progressive enhancement).
"use strict";

(() => {
  const CHECK_MS = 3000; // how often the index's generation is checked
  const MAX_TURNS = 20; // earlier turns sent with a question (the server reads no more)
  const MAX_ANSWER = 4000; // characters of an earlier answer the API takes (only questions resolve)
  const form = document.getElementById("ask-form");
  const input = document.getElementById("question");
  const button = document.getElementById("ask-button");
  const conversation = document.getElementById("conversation");
  const pane = document.getElementById("document-pane");
  const notice = document.getElementById("document-notice");
  let generation = document.body.dataset.generation || null;
  // The conversation so far, oldest first, sent with each question so that follow-ups resolve;
  // kept in the form's hidden field too, for the form post the page falls back to.
  const historyField = document.getElementById("history");
  let history = [];
  try {
    history = JSON.parse(historyField.value || "[]");
  } catch {
    history = [];
  }
  let documents = new Map(); // id -> {id, title, language, format}
  for (const link of document.querySelectorAll("#documents a[data-document]")) {
    documents.set(link.dataset.document, { id: link.dataset.document, title: link.textContent });
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // never innerHTML for our text: all of it is escaped
    return node;
  }

  function say(text) {
    notice.textContent = text;
    notice.hidden = !text;
  }

  function turn(kind, who, text) {
    const item = element("li", `turn ${kind}`);
    item.append(element("p", "who", who), element("p", "text", text));
    conversation.append(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }

  function titleOf(id) {
    const known = documents.get(id);
    return known ? known.title : id;
  }

  function passage(citation) {
    const span = element("span", "", citation.text);
    const known = documents.get(citation.document);
    if (known && known.language) span.lang = known.language;
    return span;
  }

  // Each citation's marker number by its id: from [1] in the order the answer shows them, then
  // the others (as page.py's marker_numbers).
  function markerNumbers(shown, citations) {
    const numbers = new Map();
    for (const citation of [...shown, ...citations]) {
      if (!numbers.has(citation.id)) numbers.set(citation.id, numbers.size + 1);
    }
    return numbers;
  }

  function marker(citation, label, number) {
    const link = element("a", "cite", `[${number}]`);
    link.href = `/?document=${encodeURIComponent(citation.document)}#s-${citation.document}-${citation.sentence}`;
    link.dataset.citation = String(number);
    link.dataset.document = citation.document;
    link.dataset.sentence = String(citation.sentence);
    link.dataset.text = citation.text; // to tell whether the document still holds it
    link.setAttribute("aria-label", `${label} ${number}: show it in its document`);
    return link;
  }

  const MAY_NOT_SAY = "The documents may not say this directly.";

  // "answer", "closest" (the closest passage, offered as such) or "none" (not in the documents).
  function outcomeOf(answer) {
    if (answer.outcome) return answer.outcome;
    if (!answer.abstained) return "answer";
    return answer.citations.length ? "closest" : "none";
  }

  // The calibrated probability that the first citation answers, quietly; nothing without one.
  function confidence(item, answer) {
    if (typeof answer.confidence !== "number") return;
    const line = element("p", "confidence", `Confidence ${answer.confidence.toFixed(2)}`);
    line.title = "The calibrated probability that the first citation answers the question";
    item.append(line);
  }

  // The question as it was searched (a follow-up read with the earlier questions), quietly, where
  // it reads otherwise than the question asked.
  function readAs(item, answer) {
    const plain = (text) => text.trim().split(/\s+/).join(" ").toLowerCase();
    const resolved = answer.resolved_question;
    if (typeof resolved !== "string" || plain(resolved) === plain(answer.question)) return;
    const line = element("p", "read-as", `Read as: ${resolved}`);
    line.title = "The question as it was searched, read with the conversation";
    item.append(line);
  }

  function showAnswer(item, answer) {
    const text = item.querySelector(".text");
    text.textContent = "";
    const outcome = outcomeOf(answer);
    item.dataset.outcome = outcome;
    if (outcome === "none") {
      item.className = "turn answer abstained";
      item.dataset.abstained = "true";
      item.querySelector(".who").textContent = "Not in the documents";
      text.textContent = answer.answer;
      readAs(item, answer);
      return;
    }
    if (outcome === "closest") {
      item.className = "turn answer abstained closest";
      item.dataset.abstained = "true";
      item.querySelector(".who").textContent = "Closest passage";
      // The passages follow as a list with their markers; the answer's own wording would repeat the first.
      text.textContent = MAY_NOT_SAY;
      const list = element("ul", "closest");
      const numbers = markerNumbers([], answer.citations);
      for (const citation of answer.citations) {
        const entry = element("li");
        entry.append(marker(citation, "Passage", numbers.get(citation.id)), " ", passage(citation), " ",
          element("cite", "source", titleOf(citation.document)));
        list.append(entry);
      }
      const heading = answer.citations.length === 1 ? "Closest passage" : "Closest passages";
      item.append(element("p", "closest-heading", heading), list);
      readAs(item, answer);
      confidence(item, answer);
      return;
    }
    item.className = "turn answer";
    item.dataset.abstained = "false";
    item.dataset.mode = answer.mode || "extractive";
    let numbers;
    if (answer.mode === "generated") {
      // An LLM's text, kept as text, with its checked [n] markers made links to the citations.
      item.querySelector(".who").textContent = "Written from the documents";
      const byId = new Map(answer.citations.map((citation) => [String(citation.id), citation]));
      const pieces = answer.answer.split(/\[(\d+)\]/);
      const shown = pieces.filter((piece, index) => index % 2 === 1 && byId.has(piece)).map((piece) => byId.get(piece));
      numbers = markerNumbers(shown, answer.citations);
      pieces.forEach((piece, index) => {
        if (index % 2 === 0) text.append(piece);
        else if (byId.has(piece)) text.append(marker(byId.get(piece), "Citation", numbers.get(Number(piece))));
      });
      if (answer.reason) {
        // It stopped early: what was shown stays, and says it is not all the model meant to write.
        item.append(element("p", "stopped", `The language model's reply was stopped here (${answer.reason}).`));
      }
    } else {
      item.querySelector(".who").textContent = "From the documents";
      // The answer text is the cited sentences in reading order, each followed by its marker.
      const reading = [...answer.citations].sort((a, b) =>
        a.document === b.document ? a.start - b.start : a.document < b.document ? -1 : 1);
      numbers = markerNumbers(reading, answer.citations);
      reading.forEach((citation, index) => {
        if (index) text.append(" ");
        text.append(passage(citation), " ", marker(citation, "Citation", numbers.get(citation.id)));
      });
    }
    // Each cited document once, after the numbers of its markers.
    const cited = new Map();
    for (const citation of [...answer.citations].sort((a, b) => numbers.get(a.id) - numbers.get(b.id))) {
      cited.set(citation.document, [...(cited.get(citation.document) || []), numbers.get(citation.id)]);
    }
    const sources = element("ul", "sources");
    for (const [id, numbers] of cited) {
      const entry = element("li", "", `${numbers.map((n) => `[${n}]`).join("")} `);
      entry.append(element("cite", "source", titleOf(id)));
      sources.append(entry);
    }
    item.append(sources);
    readAs(item, answer);
    confidence(item, answer);
  }

  function shownArticle() {
    return pane.querySelector("article[data-document]");
  }

  function markCurrent(id) {
    for (const link of document.querySelectorAll("#documents a[data-document]")) {
      if (link.dataset.document === id) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  // Put document `id` in the pane (fetched unless shown already); false if it is gone.
  async function show(id) {
    const current = shownArticle();
    if (current && current.dataset.document === id && current.dataset.generation === generation) return true;
    const response = await fetch(`/page/documents/${encodeURIComponent(id)}`);
    if (!response.ok) return false;
    const html = await response.text();
    // Our own server's template output, every document text in it escaped by Jinja.
    const parsed = new DOMParser().parseFromString(html, "text/html").querySelector("article[data-document]");
    if (!parsed) return false;
    pane.replaceChildren(document.adoptNode(parsed));
    markCurrent(id);
    return true;
  }

  function clearMarks() {
    for (const old of pane.querySelectorAll("mark")) old.replaceWith(...old.childNodes);
    for (const current of document.querySelectorAll('.cite[aria-current="true"]')) current.removeAttribute("aria-current");
  }

  async function highlight(link) {
    say("");
    let found = false;
    try {
      found = await show(link.dataset.document);
    } catch {
      say("The server cannot be reached. Is it running?");
      return;
    }
    const sentence = found && document.getElementById(`s-${link.dataset.document}-${link.dataset.sentence}`);
    // A marker from before the documents changed may point at text that moved or left.
    clearMarks();
    if (!sentence || (link.dataset.text !== undefined && sentence.textContent !== link.dataset.text)) {
      say(`Passage ${link.dataset.citation} is no longer in the documents: they changed after this answer. Ask again.`);
      return;
    }
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

  const list = document.getElementById("documents");
  list?.addEventListener("click", async (event) => {
    const link = event.target.closest("a[data-document]");
    if (!link) return;
    event.preventDefault();
    say("");
    if (await show(link.dataset.document).catch(() => false)) {
      shownArticle().focus({ preventScroll: true });
    } else {
      say("That document is no longer in the index.");
    }
  });

  function renderList(items) {
    if (!list) return;
    const current = shownArticle()?.dataset.document;
    list.replaceChildren(...items.slice(0, 100).map((d) => {
      const entry = element("li");
      const link = element("a", "", d.title);
      link.href = `/?document=${encodeURIComponent(d.id)}`;
      link.dataset.document = d.id;
      if (d.id === current) link.setAttribute("aria-current", "true");
      entry.append(link, " ", element("span", "meta", `${d.language || "?"} · ${d.format}`));
      return entry;
    }));
  }

  // Quoted sentences in another language than the question: the server's line saying why, under them.
  async function languageNote(item, question, answer) {
    if (answer.mode === "generated" || !answer.citations.length) return;
    const response = await fetch("/page/note", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, document: answer.citations[0].document }),
    }).catch(() => null);
    const body = response && response.ok ? await response.json().catch(() => null) : null;
    if (!body || !body.note) return;
    (item.querySelector("ul.closest") || item.querySelector(".text")).after(element("p", "language-note", body.note));
  }

  // Notice a new index: reload the list and the shown document (or the first, if it left).
  async function checkIndex() {
    if (document.body.dataset.ready !== "true") {
      const response = await fetch("/readyz").catch(() => null);
      if (response && response.ok) window.location.reload(); // the page was served while getting ready
      const body = response ? await response.json().catch(() => null) : null;
      const step = document.getElementById("ready-step");
      const detail = body && typeof body.detail === "string" ? body.detail : "";
      if (step && detail.startsWith("getting ready: ")) step.textContent = detail.slice("getting ready: ".length);
      return;
    }
    const response = await fetch("/page/documents").catch(() => null);
    if (!response || !response.ok) return;
    const body = await response.json();
    documents = new Map(body.documents.map((d) => [d.id, d]));
    if (body.generation === generation) return;
    generation = body.generation;
    renderList(body.documents);
    const current = shownArticle()?.dataset.document;
    const next = current && documents.has(current) ? current : body.documents[0]?.id;
    if (next) await show(next).catch(() => false);
    say(current && !documents.has(current) ? "The documents changed: the one shown was removed." : "");
  }
  checkIndex();
  setInterval(checkIndex, document.getElementById("getting-ready") ? 1000 : CHECK_MS); // getting ready: look often

  // Upload from the page: the same checks as POST /api/documents, the outcome in the notice.
  const upload = document.getElementById("upload-form");
  upload?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const uploadButton = document.getElementById("upload-button");
    uploadButton.disabled = true;
    say("Adding the document…");
    try {
      const response = await fetch("/api/documents", { method: "POST", body: new FormData(upload) });
      const body = await response.json().catch(() => null);
      if (response.status === 201 && body) {
        upload.reset();
        await checkIndex();
        await show(body.id).catch(() => false);
        say(`Added “${body.title}” (${body.sentences} sentences).`);
      } else if (response.status === 401) {
        say("The session has ended: reload the page and sign in again.");
      } else {
        say(`Not added: ${body && typeof body.detail === "string" ? body.detail : `status ${response.status}`}`);
      }
    } catch {
      say("The server cannot be reached. Is it running?");
    } finally {
      uploadButton.disabled = false;
    }
  });

  // The server-sent events of a streamed /api/ask: each "delta" adds to the text shown as an LLM
  // server writes it (markers stay text until the end), and "answer" is the answer to show. Gives
  // {answer} or {failed: why}: an "error" event, or a stream that ends or breaks without an answer.
  async function readAnswer(response, item) {
    const text = item.querySelector(".text");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return { failed: "the answer was cut off before it ended" };
        buffer = (buffer + value).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const fields = { event: "", data: [] };
          for (const line of buffer.slice(0, end).split("\n")) {
            const match = /^(event|data):\s?(.*)$/.exec(line); // other fields and ": comments" are ignored
            if (match && match[1] === "event") fields.event = match[2];
            else if (match) fields.data.push(match[2]);
          }
          buffer = buffer.slice(end + 2);
          if (!fields.data.length) continue;
          const data = JSON.parse(fields.data.join("\n"));
          if (fields.event === "answer") {
            reader.cancel().catch(() => {});
            return { answer: data };
          }
          if (fields.event === "error") return { failed: data.detail };
          if (fields.event === "delta") {
            if (!text.textContent) item.querySelector(".who").textContent = "Writing from the documents…";
            text.textContent += data.text;
          }
        }
      }
    } catch {
      return { failed: "the answer was cut off before it ended" };
    }
  }

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
    const item = turn("answer pending", "Searching the documents", "");
    setBusy(true);
    try {
      const response = await fetch("/api/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ question, history: history.slice(-MAX_TURNS), stream: true }),
      });
      if (response.status === 401) {
        form.submit(); // the session has ended: the server shows the sign-in form
        return;
      }
      const streamed = response.ok && (response.headers.get("Content-Type") || "").startsWith("text/event-stream");
      const read = streamed ? await readAnswer(response, item) : null;
      const body = streamed ? read.answer : await response.json().catch(() => null);
      if (response.ok && body) {
        showAnswer(item, body);
        input.value = "";
        input.placeholder = "Ask a follow-up, or something new";
        history.push({ role: "user", content: question }, { role: "assistant", content: body.answer.slice(0, MAX_ANSWER) });
        history = history.slice(-MAX_TURNS);
        historyField.value = JSON.stringify(history);
        languageNote(item, question, body); // not awaited: the next question may be typed meanwhile
      } else if (streamed) {
        item.remove();
        turn("error", "Error", `The server could not answer: ${read.failed}.`).setAttribute("role", "alert");
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
      input.focus({ preventScroll: true });
      // The new answer (or error) in view, its start first when it is taller than the window.
      const last = conversation.lastElementChild;
      last?.scrollIntoView({ block: last.offsetHeight > window.innerHeight ? "start" : "nearest" });
    }
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
})();
