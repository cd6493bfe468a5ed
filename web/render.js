// DOM builders for the chat page. Every piece of server or visitor text goes in as a text node
// (textContent / createTextNode), never as HTML, so no article or question can inject markup.

const KIND_CLASS = {
  answer: "answer--answer",
  personal_advice: "answer--personal",
  no_match: "answer--nomatch",
  out_of_scope: "answer--outofscope",
  crisis: "answer--crisis",
};

let sequence = 0;

/** A unique id prefix, for aria-labelledby links between elements. */
function nextId(prefix) {
  sequence += 1;
  return `${prefix}-${sequence}`;
}

/** An element with optional class and text content. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/**
 * The passage text as text nodes, with the server's highlight span wrapped in <mark>.
 * Offsets are Unicode code points (Python string indices), not UTF-16 units, so an emoji before
 * the span doesn't shift it. The text itself is never changed: only split.
 */
export function highlightedText(text, highlight) {
  const fragment = document.createDocumentFragment();
  const points = Array.from(text);
  const valid = highlight && Number.isInteger(highlight.start) && Number.isInteger(highlight.end)
    && highlight.start >= 0 && highlight.start < highlight.end && highlight.end <= points.length;
  if (!valid) {
    fragment.append(document.createTextNode(text));
    return fragment;
  }
  const before = points.slice(0, highlight.start).join("");
  const middle = points.slice(highlight.start, highlight.end).join("");
  const after = points.slice(highlight.end).join("");
  if (before) fragment.append(document.createTextNode(before));
  const mark = el("mark", "passage-highlight", middle);
  fragment.append(mark);
  if (after) fragment.append(document.createTextNode(after));
  return fragment;
}

/** Only plain web links become clickable; anything else (javascript:, data:) stays text. */
export function safeHttpUrl(value) {
  if (typeof value !== "string" || !value) return null;
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

// Phone numbers (3+ digits, optional spaces or dashes), bare domains and http(s) links.
const CONTACT_PATTERN =
  /(https?:\/\/[^\s]*[^\s.,;:!?)]|(?<![\w@.])(?:[a-z0-9-]+\.)+[a-z]{2,}(?![\w-])|(?<![\w+])\+?\d[\d -]*\d(?![\w]))/gi;

/**
 * Crisis referral text with its phone numbers and web addresses made tappable.
 * The text is the server's, unaltered: links wrap exactly the characters that were there.
 */
export function contactLinks(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(CONTACT_PATTERN)) {
    const token = match[0];
    let href = null;
    if (/^https?:\/\//i.test(token)) {
      href = safeHttpUrl(token);
    } else if (/[a-z]/i.test(token)) {
      href = safeHttpUrl(`https://${token}`);
    } else {
      const digits = token.replace(/[^\d+]/g, "");
      if (digits.replace("+", "").length >= 3) href = `tel:${digits}`;
    }
    if (!href) continue;
    if (match.index > last) fragment.append(document.createTextNode(text.slice(last, match.index)));
    const link = el("a", href.startsWith("tel:") ? "contact-link contact-link--phone" : "contact-link", token);
    link.href = href;
    if (!href.startsWith("tel:")) {
      link.target = "_blank";
      link.rel = "noopener noreferrer";
    }
    fragment.append(link);
    last = match.index + token.length;
  }
  if (last < text.length) fragment.append(document.createTextNode(text.slice(last)));
  return fragment;
}

/** "Title · Section", the title a link when the article has a web address. */
function sourceLine(source) {
  const caption = el("figcaption", "passage-source");
  caption.append(document.createTextNode("From "));
  const title = source && source.title ? source.title : "the clinic's articles";
  const href = source ? safeHttpUrl(source.url) : null;
  if (href) {
    const link = el("a", "passage-link");
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.append(el("cite", null, title), el("span", "visually-hidden", " (opens in a new tab)"));
    caption.append(link);
  } else {
    caption.append(el("cite", null, title));
  }
  if (source && source.section && source.section !== source.title) {
    caption.append(el("span", "passage-section", source.section));
  }
  return caption;
}

/** One verbatim passage as a quoted card. */
export function renderPassage(passage) {
  const item = el("li", "passage");
  const figure = el("figure", "passage-figure");
  const quote = el("blockquote", "passage-text");
  quote.append(highlightedText(String(passage.text ?? ""), passage.highlight));
  figure.append(quote, sourceLine(passage.source));
  item.append(figure);
  return item;
}

/** Paragraphs of a fixed text that may hold blank-line breaks (e.g. Spanish + English referral). */
function paragraphs(className, text, linkify) {
  const box = el("div", className);
  for (const part of String(text ?? "").split(/\n\s*\n/)) {
    if (!part.trim()) continue;
    const p = el("p");
    if (linkify) p.append(contactLinks(part));
    else p.textContent = part;
    box.append(p);
  }
  return box;
}

function disclaimer(text) {
  const note = el("p", "disclaimer");
  note.append(el("strong", null, "Please note: "), document.createTextNode(String(text ?? "")));
  return note;
}

/** The emergency panel for a crisis answer: no passages, the configured resources, the chat stays open. */
function renderCrisis(response, headingId) {
  const article = el("article", `answer ${KIND_CLASS.crisis}`);
  article.setAttribute("aria-labelledby", headingId);
  const panel = el("section", "crisis-panel");
  panel.setAttribute("role", "alert");
  const heading = el("h2", "crisis-heading", response.notice || "Please reach out for help now.");
  heading.id = headingId;
  panel.append(heading, paragraphs("crisis-referral", response.referral, true));
  article.append(
    panel,
    el("p", "crisis-followup", "You're welcome to keep writing here, and you can ask another question at any time."),
    disclaimer(response.disclaimer),
  );
  return article;
}

/** The answer card for any response kind: notice, passages, referral and disclaimer. */
export function renderAnswer(response) {
  const kind = KIND_CLASS[response.kind] ? response.kind : "no_match";
  const headingId = nextId("answer");
  if (kind === "crisis") return renderCrisis(response, headingId);

  const article = el("article", `answer ${KIND_CLASS[kind]}`);
  article.setAttribute("aria-labelledby", headingId);
  article.dataset.kind = kind;
  const heading = el("h2", "answer-notice", response.notice || "");
  heading.id = headingId;
  article.append(heading);
  // The safety gate's check-in line (fixed text) comes first, with tappable crisis numbers.
  if (typeof response.check_in === "string" && response.check_in) {
    const checkIn = el("p", "check-in");
    checkIn.setAttribute("role", "note");
    checkIn.append(contactLinks(response.check_in));
    article.append(checkIn);
  }

  const referral = paragraphs("referral", response.referral, false);
  const passages = Array.isArray(response.passages) ? response.passages : [];
  // Referral first when it is the answer (personal advice, no match, out of scope).
  if (kind !== "answer") article.append(referral);
  if (passages.length) {
    const list = el("ol", "passages");
    list.setAttribute("aria-label", kind === "answer"
      ? "Passages from the clinic's articles"
      : "General information from the clinic's articles");
    for (const passage of passages) list.append(renderPassage(passage));
    article.append(list);
  }
  if (kind === "answer") article.append(referral);
  article.append(disclaimer(response.disclaimer));
  return article;
}

/** The visitor's own message, as text. */
export function renderQuestion(question) {
  const bubble = el("p", "question");
  bubble.append(el("span", "visually-hidden", "You asked: "), document.createTextNode(question));
  return bubble;
}

/** The visual "looking…" placeholder; screen readers hear the status line instead. */
export function renderThinking() {
  const box = el("p", "thinking", "Looking through the clinic's articles");
  box.setAttribute("aria-hidden", "true");
  return box;
}

/**
 * "Was this helpful?" under an answer (never under a crisis answer). ``send(helpful, comment)``
 * returns a promise of true when the server kept it. "Yes" is sent at once; "No" opens an
 * optional comment first, so a visitor can say what was missing.
 */
export function renderFeedback(send) {
  const box = el("form", "feedback");
  box.setAttribute("aria-label", "Feedback on this answer");
  const question = el("p", "feedback-question", "Was this helpful?");
  const yes = el("button", "feedback-button", "Yes");
  const no = el("button", "feedback-button", "No");
  yes.type = "button";
  no.type = "button";
  const status = el("p", "feedback-status");
  status.setAttribute("role", "status");
  const buttons = el("div", "feedback-buttons");
  buttons.append(yes, no);
  box.append(question, buttons, status);

  async function submit(helpful, comment) {
    for (const control of box.querySelectorAll("button, textarea")) control.disabled = true;
    const kept = await send(helpful, comment);
    status.textContent = kept
      ? "Thank you: the clinic's team reads this."
      : "Sorry, that couldn't be sent. Thank you for trying.";
  }

  yes.addEventListener("click", () => submit(true, null));
  no.addEventListener("click", () => {
    buttons.remove();
    const label = el("label", "feedback-label", "What was missing? (optional, please leave out names and numbers)");
    const comment = el("textarea", "feedback-comment");
    comment.maxLength = 500;
    comment.rows = 2;
    const commentId = nextId("feedback-comment");
    comment.id = commentId;
    label.htmlFor = commentId;
    const sendButton = el("button", "feedback-button", "Send");
    sendButton.type = "submit";
    box.insertBefore(label, status);
    box.insertBefore(comment, status);
    box.insertBefore(sendButton, status);
    comment.focus();
  });
  box.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = box.querySelector("textarea");
    submit(false, text && text.value.trim() ? text.value.trim() : null);
  });
  return box;
}
