// The reporters' form: the same checks as the server, in Chinese, next to each
// field, before anything is uploaded. The server checks everything again.
"use strict";

function fieldError(name, message) {
  const box = document.querySelector('[data-field="' + name + '"]');
  const slot = document.getElementById("err-" + name);
  if (!box || !slot) return;
  slot.textContent = message || "";
  box.classList.toggle("has-error", Boolean(message));
}

function value(form, name) {
  const input = form.elements[name];
  return input ? input.value.trim() : "";
}

function localTime(text) {
  // datetime-local gives "2026-06-20T09:00", read in the phone's own zone
  return text ? new Date(text) : null;
}

function checkText(form, errors) {
  const required = {activity_type: "请选择活动类型", title: "请填写标题", start: "请填写开始时间",
                    place: "请填写活动地点", form: "请填写活动方式", body: "请填写活动内容"};
  for (const name in required) {
    if (!value(form, name)) errors[name] = required[name];
  }
  const titleMax = Number(form.dataset.titleMax);
  const title = value(form, "title");
  if (title && Array.from(title).length > titleMax) {
    errors.title = "标题有 " + Array.from(title).length + " 个字，最多 " + titleMax + " 个字";
  }
  const bodyMax = Number(form.dataset.bodyMax);
  const body = value(form, "body");
  if (body && Array.from(body).length > bodyMax) {
    errors.body = "活动内容最多 " + bodyMax + " 个字，请精简";
  }
  const people = value(form, "participants");
  if (people && !/^\d+$/.test(people)) errors.participants = "请填写人数（0 或正整数），例如 120";
  const links = value(form, "links").split(/\n+/).filter(Boolean);
  for (const link of links) {
    const lower = link.replace(/\s/g, "").toLowerCase();
    if (/^[a-z][a-z0-9+.-]*:/.test(lower) && !/^https?:\/\//.test(lower)) {
      errors.links = "链接只能填写 http:// 或 https:// 网址，或媒体名称（如 湖南日报）";
    }
  }
}

const loadedAt = Date.now();

function accountNow(form) {
  // The server's clock in the account's zone, read like the inputs (as local
  // wall time), so a phone set to another zone still compares like with like.
  const server = localTime(form.dataset.now);
  return server ? server.getTime() + (Date.now() - loadedAt) : Date.now();
}

function checkTimes(form, errors) {
  const start = localTime(value(form, "start"));
  const end = localTime(value(form, "end"));
  const grace = Number(form.dataset.graceMinutes) * 60000;
  if (start && start.getTime() > accountNow(form) + grace) {
    errors.start = "开始时间在将来；只能报送已经举行的活动";
  }
  if (start && end && end < start) errors.end = "结束时间早于开始时间";
}

function checkPhotos(form, errors) {
  const files = [];
  form.querySelectorAll('input[type="file"]').forEach(function (input) {
    Array.from(input.files || []).forEach(function (f) { files.push(f); });
  });
  const maxBytes = Number(form.dataset.photoMaxBytes);
  const maxCount = Number(form.dataset.photoMaxCount);
  if (files.length > maxCount) {
    errors.photos = "选择了 " + files.length + " 张图片，每篇最多 " + maxCount + " 张";
  }
  files.forEach(function (f, i) {
    if (f.type && !/^image\/(jpeg|png)$/.test(f.type)) {
      errors.photos = "第 " + (i + 1) + " 张不是 JPG 或 PNG 图片";
    } else if (f.size > maxBytes) {
      errors.photos = "第 " + (i + 1) + " 张图片超过 " + Math.round(maxBytes / 1048576) + " MB，请压缩后再上传";
    }
  });
  const summary = document.getElementById("photo-summary");
  if (summary && files.length) summary.textContent = "已选择 " + files.length + " 张图片";
}

function validate(form) {
  const errors = {};
  checkText(form, errors);
  checkTimes(form, errors);
  checkPhotos(form, errors);
  ["activity_type", "title", "start", "end", "place", "form", "participants", "body", "links",
   "contact", "photos"].forEach(function (name) { fieldError(name, errors[name]); });
  return errors;
}

function titleCounter(form) {
  const title = document.getElementById("f-title");
  const counter = document.querySelector('[data-counter-for="f-title"]');
  if (!title || !counter) return;
  const update = function () {
    counter.textContent = "已写 " + Array.from(title.value).length + " 字";
  };
  title.addEventListener("input", update);
  update();
}

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("report-form");
  if (!form) return;
  titleCounter(form);
  form.addEventListener("change", function () { validate(form); });
  form.addEventListener("submit", function (e) {
    const errors = validate(form);
    const first = Object.keys(errors)[0];
    if (first) {
      e.preventDefault();
      const input = form.elements[first] || document.getElementById("f-photos");
      if (input && input.focus) input.focus();
      return;
    }
    // one tap is enough: the key in the form makes a second one harmless anyway
    document.getElementById("submit").disabled = true;
  });
});
