/* The project's automations: "New automation" creates an empty one through the API and opens it. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("list-config").textContent);
  var form = document.getElementById("new-automation");
  if (!form) { return; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var error = document.getElementById("new-error");
    error.textContent = "";
    fetch(config.api, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": config.csrf},
      body: JSON.stringify({name: document.getElementById("new-name").value, enabled: true, flow: {steps: []}})
    }).then(function (response) {
      return response.json().then(function (data) { return {ok: response.ok, data: data}; });
    }).then(function (answer) {
      if (answer.ok) {
        window.location.href = config.studio.replace("AUTOMATION_ID", encodeURIComponent(answer.data.id));
      } else {
        error.textContent = Object.keys(answer.data).map(function (key) {
          return key + ": " + [].concat(answer.data[key]).join(" ");
        }).join("; ");
      }
    }).catch(function () { error.textContent = "The server could not be reached."; });
  });
}());
