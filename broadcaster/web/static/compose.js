// The compose page: show the fields of the chosen source, timing and priority; play a chosen recording
// here before it is sent; render the preview again once a reading was added to the lexicon; and let
// htmx swap this page's refusals (4xx), which carry the words the officer must read.
"use strict";
(() => {
  const form = document.getElementById("compose");
  if (!form) return;

  const chosen = (name) => {
    const input = form.querySelector(`input[name="${name}"]:checked`);
    return input ? input.value : "";
  };

  const show = () => {
    const values = { source: chosen("source"), timing: chosen("timing"), priority: chosen("priority") };
    for (const [name, value] of Object.entries(values)) {
      form.querySelectorAll(`[data-show-${name}]`).forEach((el) => {
        el.hidden = !el.getAttribute(`data-show-${name}`).split(" ").includes(value);
      });
      form.querySelectorAll(`[data-hide-${name}]`).forEach((el) => {
        el.hidden = el.getAttribute(`data-hide-${name}`).split(" ").includes(value);
      });
    }
    // A timing the source cannot have (a recording does not repeat, a relay is a programme): the first one shown.
    const timing = form.querySelector('input[name="timing"]:checked');
    if (timing && timing.closest("[hidden]")) {
      const first = [...form.querySelectorAll('input[name="timing"]')].find((i) => !i.closest("[hidden]"));
      if (first) { first.checked = true; show(); }
    }
  };
  form.addEventListener("change", (event) => {
    if (["source", "timing", "priority"].includes(event.target.name)) show();
  });
  show();

  // A recording chosen on the phone is heard here first; nothing is sent until the form is.
  const file = document.getElementById("recording");
  const local = document.getElementById("recording-preview");
  if (file && local) {
    file.addEventListener("change", () => {
      if (local.src) URL.revokeObjectURL(local.src);
      const picked = file.files && file.files[0];
      local.hidden = !picked;
      if (picked) local.src = URL.createObjectURL(picked);
    });
  }

  // Enter in the lexicon's small form adds the reading rather than saving the whole form.
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.closest && event.target.closest("#fix")) {
      event.preventDefault();
      const button = document.getElementById("fix-button");
      if (button) button.click();
    }
  });

  // A reading was added: hear the item again with it (the preview renders anew).
  document.body.addEventListener("lexicon-changed", () => {
    const button = document.getElementById("preview-button");
    if (button && document.getElementById("preview-audio")) button.click();
  });

  // This page's fragments answer a refusal with its 4xx status and the words to show in place.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if (status >= 400 && status < 500) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
