/* The cashier page: three ways to enter a voucher code, all ending in the same GET /cashier/?code=...
   - a USB keyboard-wedge scanner types into the focused input and sends Enter (a native form submit);
   - typing by hand (the server forgives case, spaces and dashes, and reads a whole voucher link);
   - the camera: the browser's BarcodeDetector where it exists, else jsQR (vendored, loaded on demand).
   Without JavaScript the page still works: type, Enter, Hand over. */
(function () {
  "use strict";

  var script = document.currentScript;
  var form = document.getElementById("scan-form");
  var input = document.getElementById("code");
  var cameraOpen = false;
  // Counter PCs (mouse, USB scanner) keep the input focused so a scan always lands in it. Phones do not:
  // focusing would pop the on-screen keyboard up over the verdict.
  var counterPC = window.matchMedia && window.matchMedia("(pointer: fine)").matches;

  function focusInput() {
    if (input && !cameraOpen && document.activeElement !== input) {
      input.focus({ preventScroll: true });
    }
  }

  if (form && input) {
    if (counterPC) {
      focusInput();
      input.addEventListener("blur", function () {
        setTimeout(function () {
          var active = document.activeElement;
          if (!active || active === document.body) focusInput();
        }, 200);
      });
    }
    form.addEventListener("submit", function (event) {
      if (!input.value.trim()) {
        event.preventDefault();
        input.focus();
      }
    });
  }

  // Hand over: one tap. The server would answer a second one with the same redemption anyway (the
  // form's key), but a button that visibly reacts is what stops the second tap.
  var handover = document.getElementById("handover-form");
  if (handover) {
    handover.addEventListener("submit", function (event) {
      var button = document.getElementById("hand-over");
      if (button.getAttribute("aria-busy") === "true") {
        event.preventDefault();
        return;
      }
      button.setAttribute("aria-busy", "true");
      button.textContent = button.getAttribute("data-busy");
      setTimeout(function () { button.disabled = true; }, 0);
    });
  }

  // Partial pickup: a − / + stepper per line (default: all that is left). The button says what it will do:
  // "Hand over" for everything, "Hand over 3 of 6" for a part, and nothing to tap at zero.
  var steppers = document.querySelectorAll(".picker .stepper");
  var button = document.getElementById("hand-over");
  function units(input) {
    var n = parseInt(input.value, 10);
    return isNaN(n) ? 0 : n;
  }
  function relabel() {
    if (!button) return;
    var chosen = 0, left = 0;
    document.querySelectorAll(".picker .qty-input").forEach(function (input) {
      chosen += units(input);
      left += parseInt(input.getAttribute("max"), 10) || 0;
    });
    button.textContent = chosen >= left ? button.getAttribute("data-all")
      : button.getAttribute("data-part").replace("{n}", chosen).replace("{m}", left);
    button.disabled = chosen <= 0;
  }
  steppers.forEach(function (stepper) {
    var input = stepper.querySelector(".qty-input");
    stepper.querySelectorAll(".step").forEach(function (step) {
      step.addEventListener("click", function () {
        var max = parseInt(input.getAttribute("max"), 10) || 0;
        input.value = String(Math.min(max, Math.max(0, units(input) + parseInt(step.getAttribute("data-step"), 10))));
        relabel();
      });
    });
    input.addEventListener("input", relabel);
  });
  if (steppers.length) relabel();

  var retry = document.getElementById("retry-after");
  if (retry) {
    var left = parseInt(retry.getAttribute("data-seconds"), 10) || 0;
    var timer = setInterval(function () {
      left = Math.max(0, left - 1);
      retry.textContent = String(left);
      if (!left) clearInterval(timer);
    }, 1000);
  }

  // ------------------------------------------------------------------ camera
  var openButton = document.getElementById("camera-open");
  var note = document.getElementById("camera-note");
  var view = document.getElementById("camera-view");
  var video = document.getElementById("camera-video");
  var stream = null;

  function say(message) {
    if (!note) return;
    note.textContent = message;
    note.hidden = false;
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      if (window.jsQR) return resolve();
      var tag = document.createElement("script");
      tag.src = src;
      tag.onload = function () { resolve(); };
      tag.onerror = function () { reject(new Error("could not load " + src)); };
      document.head.appendChild(tag);
    });
  }

  async function makeDetector() {
    if ("BarcodeDetector" in window) {
      try {
        var formats = await window.BarcodeDetector.getSupportedFormats();
        if (formats.indexOf("qr_code") >= 0) {
          var native = new window.BarcodeDetector({ formats: ["qr_code"] });
          return async function () {
            var codes = await native.detect(video);
            return codes.length ? codes[0].rawValue : null;
          };
        }
      } catch (error) { /* fall back to jsQR */ }
    }
    await loadScript(script.getAttribute("data-jsqr"));
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    return async function () {
      var width = video.videoWidth, height = video.videoHeight;
      if (!width || !height) return null;
      // jsQR's time grows with the pixels; 720 px on the long side reads a phone-screen voucher easily.
      var scale = Math.min(1, 720 / Math.max(width, height));
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      var image = context.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
      return found ? found.data : null;
    };
  }

  function stopCamera() {
    cameraOpen = false;
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    if (video) video.srcObject = null;
    if (view) view.hidden = true;
    if (counterPC) focusInput();
  }

  async function startCamera() {
    cameraOpen = true;
    view.hidden = false;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 } }, audio: false,
      });
    } catch (error) {
      stopCamera();
      say(script.getAttribute("data-msg-camera-denied"));
      return;
    }
    video.srcObject = stream;
    try { await video.play(); } catch (error) { /* autoplay of a muted inline video is allowed */ }
    var detect = await makeDetector();
    (function scan() {
      if (!cameraOpen) return;
      detect().then(function (text) {
        if (!cameraOpen) return;
        if (text) {
          if (navigator.vibrate) navigator.vibrate(60);
          stopCamera();
          input.value = text;  // the server reads the code out of the voucher link
          form.submit();
        } else {
          setTimeout(scan, 120);
        }
      }, function () { setTimeout(scan, 250); });
    })();
  }

  if (openButton && view) {
    if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
      openButton.hidden = false;
      openButton.addEventListener("click", startCamera);
      document.getElementById("camera-close").addEventListener("click", stopCamera);
      document.addEventListener("keydown", function (event) {
        if (event.key === "Escape" && cameraOpen) stopCamera();
      });
    } else if (!counterPC) {
      say(script.getAttribute("data-msg-no-camera"));
    }
  }
})();
