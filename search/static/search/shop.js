// The shop's few behaviours, no framework: suggestions, busy buttons, the camera button,
// pasting a photo, crisp small images, the weight control, region selection, look markers.
(() => {
  "use strict";
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // Autocomplete for every search box: a native <datalist>, so arrow keys, Enter and
  // screen readers work as for any input; suggestions from GET /api/suggest/.
  $$("input[type=search][name=q]").forEach((box, n) => {
    const list = document.createElement("datalist");
    list.id = "suggestions-" + n;
    box.setAttribute("list", list.id);
    box.setAttribute("autocomplete", "off");
    box.after(list);
    let timer = null;
    box.addEventListener("input", () => {
      clearTimeout(timer);
      const q = box.value.trim();
      if (!q) { list.replaceChildren(); return; }
      timer = setTimeout(() => {
        fetch(document.body.dataset.suggestUrl + "?q=" + encodeURIComponent(q))
          .then(r => (r.ok ? r.json() : { suggestions: [] }))
          .then(body => list.replaceChildren(...body.suggestions.map(s => {
            const option = document.createElement("option");
            option.value = s.text; option.label = s.kind;
            return option;
          }))).catch(() => {});
      }, 150);
    });
  });

  // While a request runs: the button is disabled, shows a spinner and says so.
  const status = document.createElement("div");
  status.setAttribute("role", "status");
  status.className = "visually-hidden";
  status.id = "busy-status";
  document.body.append(status);
  function busy(form, submitter) {
    const button = submitter || form.querySelector("button[type=submit], button:not([type])") ||
      $(`button[form="${form.id}"]`);
    form.setAttribute("aria-busy", "true");
    status.textContent = form.dataset.busyText || "Searching…";
    if (!button) return;
    button.dataset.label = button.dataset.label || button.innerHTML;
    button.disabled = true;
    button.setAttribute("aria-disabled", "true");
    const spin = document.createElement("span");
    spin.className = "spinner"; spin.setAttribute("aria-hidden", "true");
    button.replaceChildren(spin, document.createTextNode(" " + (form.dataset.busyText || "Searching…")));
  }
  document.addEventListener("submit", ev => {
    if (!ev.defaultPrevented) busy(ev.target, ev.submitter);
  });
  window.addEventListener("pageshow", ev => {  // back from the results (bfcache): usable again
    if (!ev.persisted) return;
    status.textContent = "";
    $$("form[aria-busy]").forEach(f => f.removeAttribute("aria-busy"));
    $$("button[data-label]").forEach(b => { b.disabled = false; b.removeAttribute("aria-disabled"); b.innerHTML = b.dataset.label; });
  });

  // The camera button of every search box: choosing a photo searches with it at once.
  $$("input[type=file][data-autosubmit]").forEach(input => input.addEventListener("change", () => {
    if (input.files.length) input.form.requestSubmit();
  }));

  // Paste a photo anywhere: on the photo page it becomes the photo to search with; elsewhere
  // it is searched with at once (the camera button's form).
  document.addEventListener("paste", ev => {
    const file = Array.from((ev.clipboardData || {}).files || []).find(f => f.type.startsWith("image/"));
    if (!file) return;
    ev.preventDefault();
    const target = $("#image-input") || $("#camera-input");
    const dt = new DataTransfer(); dt.items.add(file); target.files = dt.files;
    target.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // Product photos smaller than their box (the demo's 128 px) are scaled without blurring.
  function crisp(img) {
    if (img.naturalWidth && img.naturalWidth < img.clientWidth * (window.devicePixelRatio || 1)) {
      img.classList.add("upscaled");
    }
  }
  $$("img[data-crisp]").forEach(img => (img.complete ? crisp(img) : img.addEventListener("load", () => crisp(img))));

  // The weight control: how much the words count against the photo, said in words.
  function weightWords(w) {
    if (w <= 0) return "Only the look";
    if (w < 0.35) return "Mostly the look";
    if (w <= 0.65) return "Look and words equally";
    if (w < 1) return "Mostly your words";
    return "Only your words";
  }
  $$("input[type=range][data-weight]").forEach(range => {
    const out = document.getElementById(range.dataset.weight);
    const show = () => {
      out.textContent = weightWords(+range.value) + ` (words ${Math.round(range.value * 100)}%)`;
      range.setAttribute("aria-valuetext", out.textContent);
    };
    range.addEventListener("input", show); show();
  });

  regionSelection();
  lookMarkers();

  // Region selection: drag on the photo, or keyboard: "Select a region" puts a default box,
  // arrow keys move it, Shift + arrow keys resize it, Delete clears it. Sent as fractions.
  function regionSelection() {
    const stage = $("#stage"), img = $("#preview"), sel = $("#sel"), crop = $("#crop");
    if (!stage || !img || !sel || !crop) return;
    const input = $("#image-input"), drop = $("#drop"), info = $("#sel-info"), start = $("#select-region");
    let box = null;  // [x, y, w, h] fractions
    const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
    function draw() {
      if (!box) {
        sel.style.display = "none"; crop.value = "";
        info.textContent = img.getAttribute("src") ? "Searching the whole photo." : "";
        return;
      }
      const [x, y, w, h] = box;
      Object.assign(sel.style, { display: "block", left: x * 100 + "%", top: y * 100 + "%", width: w * 100 + "%", height: h * 100 + "%" });
      crop.value = box.map(v => v.toFixed(4)).join(",");
      info.textContent = `Selected ${Math.round(w * 100)}% × ${Math.round(h * 100)}% of the photo, ` +
        `${Math.round(x * 100)}% from the left and ${Math.round(y * 100)}% from the top.`;
    }
    if (crop.value) {
      const parts = crop.value.split(",").map(Number);
      if (parts.length === 4 && parts.every(v => !Number.isNaN(v))) box = parts;
    }
    draw();
    function load(file) {
      if (!file) return;
      img.src = URL.createObjectURL(file);
      stage.hidden = false; box = null; draw();
      if (start) start.hidden = false;
      info.textContent = `${file.name}: ready. Select a region, or search the whole photo.`;
    }
    if (input) input.addEventListener("change", () => load(input.files[0]));
    if (drop) {
      ["dragenter", "dragover"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.add("over"); }));
      ["dragleave", "drop"].forEach(e => drop.addEventListener(e, ev => { ev.preventDefault(); drop.classList.remove("over"); }));
      drop.addEventListener("drop", ev => {
        const files = ev.dataTransfer.files;
        if (!files.length || !input) return;
        const dt = new DataTransfer(); dt.items.add(files[0]); input.files = dt.files;  // submitted with the form
        load(files[0]);
      });
    }
    if (start) start.addEventListener("click", () => { box = box || [0.2, 0.2, 0.6, 0.6]; draw(); sel.focus(); });
    sel.addEventListener("keydown", ev => {
      if (!box) return;
      const step = 0.05;
      const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[ev.key];
      if (ev.key === "Delete" || ev.key === "Backspace" || ev.key === "Escape") {
        ev.preventDefault(); box = null; draw(); if (start) start.focus(); return;
      }
      if (!d) return;
      ev.preventDefault();
      let [x, y, w, h] = box;
      if (ev.shiftKey) { w = clamp(w + d[0], 0.05, 1 - x); h = clamp(h + d[1], 0.05, 1 - y); }
      else { x = clamp(x + d[0], 0, 1 - w); y = clamp(y + d[1], 0, 1 - h); }
      box = [x, y, w, h]; draw();
    });
    let from = null;
    const pos = ev => { const r = img.getBoundingClientRect();
      return [clamp((ev.clientX - r.left) / r.width, 0, 1), clamp((ev.clientY - r.top) / r.height, 0, 1)]; };
    img.addEventListener("pointerdown", ev => { ev.preventDefault(); from = pos(ev); img.setPointerCapture(ev.pointerId); });
    img.addEventListener("pointermove", ev => {
      if (!from) return;
      const [x, y] = pos(ev);
      box = [Math.min(x, from[0]), Math.min(y, from[1]), Math.abs(x - from[0]), Math.abs(y - from[1])];
      draw();
    });
    img.addEventListener("pointerup", ev => {
      if (!from) return;
      const [x, y] = pos(ev);
      const w = Math.abs(x - from[0]), h = Math.abs(y - from[1]);
      box = w < 0.02 || h < 0.02 ? null : [Math.min(x, from[0]), Math.min(y, from[1]), w, h];
      from = null; draw();
    });
  }

  // Shop the look: each marker shows its item's results; the first is shown to start with.
  function lookMarkers() {
    const markers = $$(".marker[aria-controls]");
    if (!markers.length) return;
    function show(marker) {
      markers.forEach(m => {
        const on = m === marker;
        m.setAttribute("aria-pressed", on ? "true" : "false");
        document.getElementById(m.getAttribute("aria-controls")).hidden = !on;
      });
    }
    markers.forEach(m => m.addEventListener("click", () => show(m)));
    show(markers[0]);
  }
})();

// A file input that names its chosen file in another element (data-file-name="ID"): a
// visually hidden input inside a label button shows nothing by itself.
document.querySelectorAll("input[type=file][data-file-name]").forEach((input) => {
  input.addEventListener("change", () => {
    const f = input.files[0];
    document.getElementById(input.dataset.fileName).textContent = f ? f.name : "";
  });
});
