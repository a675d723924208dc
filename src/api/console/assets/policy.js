// The Policy page's draft upload: the chosen file's text goes into the draft textarea, which the form posts (the
// console parses no multipart bodies). A file over the page's limit is refused here; the server checks again.
'use strict';
(function () {
  var input = document.getElementById('draft-file');
  var draft = document.getElementById('draft');
  if (!input || !draft) return;
  input.addEventListener('change', function () {
    var file = input.files && input.files[0];
    if (!file) return;
    var max = Number(input.getAttribute('data-max-bytes'));
    if (file.size > max) {
      input.setCustomValidity('The file is larger than ' + Math.round(max / 1024) + ' KiB.');
      input.reportValidity();
      input.value = '';
      return;
    }
    input.setCustomValidity('');
    file.text().then(function (text) {
      draft.value = text;
    });
  });
})();
