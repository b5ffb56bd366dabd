/* Frontdesk booking embed for a clinic's own site:
 *   <script src="https://bookings.example.com/embed.js" data-service="sports-massage"
 *           data-mode="inline" async></script>
 * data-mode="inline" (default) puts the booking page in place; data-mode="button" puts a
 * "Book now" button that opens it in a dialog. The frame sizes itself with
 * {"type":"frontdesk:resize","height":n}; after a booking the host page gets a bubbling
 * `frontdesk:booked` event whose detail is {reference}. Messages carry no personal data. */
(function () {
  'use strict';
  var scripts = document.querySelectorAll('script[src*="/embed.js"]:not([data-frontdesk-done])');
  var list = document.currentScript ? [document.currentScript] : Array.prototype.slice.call(scripts);

  function frameUrl(script, mode) {
    var src = new URL(script.src, window.location.href);
    var url = new URL('/book', src.origin);
    url.searchParams.set('embed', '1');
    url.searchParams.set('origin', window.location.origin);
    if (script.dataset.service) url.searchParams.set('service', script.dataset.service);
    if (script.dataset.practitioner) url.searchParams.set('practitioner', script.dataset.practitioner);
    if (mode === 'dialog') url.searchParams.set('mode', 'dialog');
    return url;
  }

  function makeFrame(url) {
    var frame = document.createElement('iframe');
    frame.src = url.toString();
    frame.title = 'Book an appointment';
    frame.setAttribute('loading', 'lazy');
    frame.style.width = '100%';
    frame.style.minHeight = '420px';
    frame.style.border = '0';
    frame.style.display = 'block';
    return frame;
  }

  /* Only messages from our own frame, from its origin, are read. */
  function listen(frame, origin, host, onClose) {
    window.addEventListener('message', function (event) {
      if (event.origin !== origin || event.source !== frame.contentWindow) return;
      var data = event.data || {};
      if (data.type === 'frontdesk:resize' && typeof data.height === 'number' && data.height > 0) {
        frame.style.height = Math.min(Math.ceil(data.height), 20000) + 'px';
        frame.style.minHeight = '0';
      } else if (data.type === 'frontdesk:booked' && typeof data.reference === 'string') {
        host.dispatchEvent(new CustomEvent('frontdesk:booked', {
          bubbles: true, detail: { reference: data.reference }
        }));
      } else if (data.type === 'frontdesk:close' && onClose) {
        onClose();
      }
    });
  }

  function inline(script) {
    var url = frameUrl(script, 'inline');
    var holder = document.createElement('div');
    holder.className = 'frontdesk-embed';
    var frame = makeFrame(url);
    holder.appendChild(frame);
    script.parentNode.insertBefore(holder, script.nextSibling);
    listen(frame, url.origin, holder, null);
  }

  function button(script) {
    var url = frameUrl(script, 'dialog');
    var holder = document.createElement('div');
    holder.className = 'frontdesk-embed';
    var open = document.createElement('button');
    open.type = 'button';
    open.className = 'frontdesk-book-now';
    open.textContent = script.dataset.label || 'Book now';
    open.style.minHeight = '44px';
    open.style.minWidth = '44px';
    var dialog = document.createElement('dialog');
    dialog.setAttribute('aria-label', 'Book an appointment');
    dialog.style.width = 'min(760px, 100vw - 16px)';
    dialog.style.maxHeight = 'calc(100vh - 16px)';
    dialog.style.padding = '0';
    dialog.style.border = '0';
    dialog.style.borderRadius = '8px';
    var bar = document.createElement('div');
    bar.style.display = 'flex';
    bar.style.justifyContent = 'flex-end';
    bar.style.padding = '4px';
    var close = document.createElement('button');
    close.type = 'button';
    close.textContent = 'Close';
    close.setAttribute('aria-label', 'Close booking');
    close.style.minHeight = '44px';
    close.style.minWidth = '44px';
    bar.appendChild(close);
    var frame = null;
    var opener = null;
    dialog.appendChild(bar);
    holder.appendChild(open);
    holder.appendChild(dialog);
    script.parentNode.insertBefore(holder, script.nextSibling);

    function shut() {
      if (dialog.open) dialog.close();
    }
    dialog.addEventListener('close', function () {
      /* Focus goes back to whatever opened the dialog. */
      if (opener && opener.focus) opener.focus();
    });
    /* Tab and Shift+Tab stay inside the dialog: the close button and the frame. */
    dialog.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') {
        e.preventDefault();
        shut();
      } else if (e.key === 'Tab' && frame) {
        if (document.activeElement === close) {
          e.preventDefault();
          frame.focus();
        }
      }
    });
    close.addEventListener('click', shut);
    open.addEventListener('click', function () {
      opener = document.activeElement;
      if (!frame) {
        frame = makeFrame(url);
        frame.removeAttribute('loading');
        dialog.appendChild(frame);
        listen(frame, url.origin, holder, shut);
      }
      dialog.showModal();
      close.focus();
    });
  }

  list.forEach(function (script) {
    if (!script || script.dataset.frontdeskDone) return;
    script.dataset.frontdeskDone = '1';
    if (script.dataset.mode === 'button') button(script);
    else inline(script);
  });
})();
