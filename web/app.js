// The chat page: sends the visitor's question to the API and shows the answer.
// URLs are relative, so the page also works when the app is served under a path prefix.

import { el, renderAnswer, renderFeedback, renderQuestion, renderThinking } from "./render.js";

const REQUEST_TIMEOUT_MS = 60000;

const MESSAGES = {
  empty: "Please type a question first.",
  offline: "I can't reach the clinic's question service right now. Please check your connection "
    + "and try again in a moment. Your question is still in the box.",
  timeout: "That took too long to answer. Please try again in a moment. Your question is still in the box.",
  server: "Something went wrong on our side. Please try again in a moment. Your question is still in the box.",
  invalid: "That question couldn't be read. Please rephrase it and try again.",
  busy: "You've sent a lot of questions in a short time. Please wait a minute and then ask again.",
  looking: "Looking through the clinic's articles…",
  received: "Answer received.",
};

const form = document.getElementById("ask-form");
const box = document.getElementById("question");
const button = document.getElementById("ask-button");
const errorLine = document.getElementById("ask-error");
const statusLine = document.getElementById("ask-status");
const conversation = document.getElementById("conversation");
const welcome = document.getElementById("welcome");
const starters = document.getElementById("starters");

let pending = false;

function showError(message) {
  errorLine.textContent = message;
  box.setAttribute("aria-invalid", "true");
}

function clearError() {
  errorLine.textContent = "";
  box.removeAttribute("aria-invalid");
}

function setPending(value) {
  pending = value;
  form.setAttribute("aria-busy", String(value));
  // aria-disabled, not disabled: a disabled button would drop keyboard focus.
  button.setAttribute("aria-disabled", String(value));
  statusLine.textContent = value ? MESSAGES.looking : "";
}

function scrollToStart(node) {
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  node.scrollIntoView({ block: "start", behavior: smooth ? "smooth" : "auto" });
}

/** A readable sentence for a failed response, preferring the server's own {"detail": "..."}. */
async function failureMessage(response) {
  let detail = "";
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") detail = body.detail;
  } catch {
    // Not JSON (a proxy's error page, say): fall back to our own sentence.
  }
  if (response.status === 422) return detail || MESSAGES.invalid;
  if (response.status === 429) {
    const wait = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    if (detail) return detail;
    return Number.isFinite(wait)
      ? `You've sent a lot of questions in a short time. Please wait about ${wait} seconds and then ask again.`
      : MESSAGES.busy;
  }
  return MESSAGES.server;
}

async function ask(question) {
  if (pending) return;
  if (!question.trim()) {
    showError(MESSAGES.empty);
    box.focus();
    return;
  }
  clearError();
  setPending(true);

  const exchange = el("section", "exchange");
  const thinking = renderThinking();
  exchange.append(renderQuestion(question), thinking);
  conversation.append(exchange);
  scrollToStart(exchange);

  let failure = null;
  try {
    const response = await fetch("api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ question }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (response.ok) {
      const answer = await response.json();
      thinking.replaceWith(renderAnswer(answer));
      if (answer.kind !== "crisis") exchange.append(renderFeedback((helpful, comment) => sendFeedback(answer, helpful, comment)));
      // Only now is the question answered: clear the box for the next one.
      if (box.value === question) box.value = "";
      statusLine.textContent = MESSAGES.received;
      scrollToStart(exchange);
    } else {
      failure = await failureMessage(response);
    }
  } catch (error) {
    failure = error && error.name === "TimeoutError" ? MESSAGES.timeout : MESSAGES.offline;
  } finally {
    pending = false;
    form.setAttribute("aria-busy", "false");
    button.setAttribute("aria-disabled", "false");
  }
  if (failure) {
    // The question wasn't answered: take it out of the conversation, keep it in the box.
    exchange.remove();
    statusLine.textContent = "";
    if (!box.value) box.value = question;
    showError(failure);
  }
}

/** Send a verdict on ``answer``; true when the server kept it. */
async function sendFeedback(answer, helpful, comment) {
  try {
    const response = await fetch("api/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        question: answer.question,
        kind: answer.kind,
        index_version: answer.index_version,
        passage_ids: (answer.passages || []).map((p) => p.id).filter(Boolean),
        helpful,
        comment,
      }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return response.ok && (await response.json()).recorded === true;
  } catch {
    return false;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  ask(box.value);
});

box.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

box.addEventListener("input", () => {
  if (errorLine.textContent) clearError();
});

async function loadStarters() {
  try {
    const response = await fetch("api/suggestions?limit=6", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const body = await response.json();
    const questions = Array.isArray(body.questions) ? body.questions : [];
    for (const question of questions) {
      if (typeof question !== "string" || !question.trim()) continue;
      const item = el("li");
      const starter = el("button", "starter", question);
      starter.type = "button";
      starter.addEventListener("click", () => {
        box.value = question;
        ask(question);
      });
      item.append(starter);
      starters.append(item);
    }
    welcome.hidden = starters.childElementCount === 0;
  } catch {
    // Starter questions are a convenience: without them the page still works.
  }
}

loadStarters();
