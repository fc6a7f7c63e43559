// The editors' desk: live re-render of the Markdown, drag-and-drop push order,
// a confirmation before pushing. Plain JS, no framework; every feature also
// works without it (the forms post normally).
"use strict";

function debounce(fn, ms) {
  let timer = null;
  return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

function livePreview() {
  const area = document.getElementById("markdown");
  if (!area) return;
  const form = document.getElementById(area.dataset.previewForm);
  const status = document.getElementById("render-status");
  const csrf = form.querySelector("input[name=csrf_token]").value;
  const update = debounce(async function () {
    // the preview itself: post the text into the sandboxed iframe
    form.querySelector("textarea").value = area.value;
    form.submit();
    // the WeChat problems of the edited text, beside it
    try {
      const response = await fetch(area.dataset.renderUrl, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({markdown: area.value}),
      });
      const data = await response.json();
      const box = document.getElementById("problems");
      const list = document.getElementById("problem-list");
      list.replaceChildren(...(data.problems || []).map(function (p) {
        const li = document.createElement("li"); li.textContent = p; return li;
      }));
      box.hidden = !(data.problems && data.problems.length);
      status.textContent = "预览已更新（尚未保存）";
    } catch (err) {
      status.textContent = "预览暂时无法更新，可直接保存。";
    }
  }, 400);
  area.addEventListener("input", update);
}

function dragOrder() {
  const list = document.getElementById("push-list");
  if (!list) return;
  let dragged = null;
  list.addEventListener("dragstart", function (e) {
    dragged = e.target.closest("li");
    if (dragged) dragged.classList.add("dragging");
  });
  list.addEventListener("dragover", function (e) {
    e.preventDefault();
    const over = e.target.closest("li");
    if (!dragged || !over || over === dragged) return;
    const box = over.getBoundingClientRect();
    const after = e.clientY > box.top + box.height / 2;
    list.insertBefore(dragged, after ? over.nextSibling : over);
  });
  list.addEventListener("dragend", async function () {
    if (!dragged) return;
    dragged.classList.remove("dragging");
    dragged = null;
    const order = Array.from(list.querySelectorAll("li")).map(li => Number(li.dataset.id));
    await fetch(list.dataset.orderUrl, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": list.dataset.csrf},
      body: JSON.stringify({order: order}),
    });
    window.location.reload();
  });
}

function confirmPush() {
  const form = document.getElementById("push-now");
  if (!form) return;
  form.addEventListener("submit", function (e) {
    if (!window.confirm(form.dataset.confirm)) e.preventDefault();
  });
}

function selectOnFocus() {
  document.querySelectorAll("input.copy").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  livePreview();
  dragOrder();
  confirmPush();
  selectOnFocus();
});
