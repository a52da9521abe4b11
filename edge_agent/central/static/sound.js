// A short tone made in the page (no audio file to fetch); browsers allow it after the first key or click.
"use strict";
window.beep = (function () {
  let ctx = null;
  const unlock = () => { if (!ctx) { try { ctx = new AudioContext(); } catch (e) { ctx = null; } } };
  document.addEventListener("keydown", unlock, {once: true});
  document.addEventListener("click", unlock, {once: true});
  return function (freq, ms) {
    if (!ctx) return;
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = freq || 880;
    gain.gain.value = 0.15;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + (ms || 200) / 1000);
  };
})();
