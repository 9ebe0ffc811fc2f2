// GET /models (every version with metrics and creation time), GET /models/{version}/card (its model card,
// Markdown, train/model_card.h) and POST /models/{version}/activate (promote or roll back; atomic, see
// server/model_registry.h). Each handler is one function; register_model_routes at the bottom binds them.
#include <cstdio>

#include "io/atomic_file.h"
#include "models/model_file.h"
#include "server/http_util.h"
#include "server/routes.h"

namespace mriscan {
namespace {

// The version number in a {version} path segment ("v3" or "3"), or 400.
int64_t version_number(const std::string& text) {
  std::optional<int64_t> number = parse_version(text);
  if (!number) throw HttpError(400, "a model version looks like 'v3' or '3', got '" + text + "'");
  return *number;
}

// GET /models
void get_models(ServerContext& context, const httplib::Request&, httplib::Response& res) {
  nlohmann::json versions = nlohmann::json::array();
  for (const ModelVersion& version : context.registry.list()) versions.push_back(version.to_json());
  auto active = context.registry.active();
  nlohmann::json body = {{"models", versions}, {"active_version", active ? nlohmann::json(active->name) : nullptr}};
  if (active) {
    body["class_names"] = active->classifier->class_names();
    body["image_size"] = active->classifier->image_size();
  }
  send_json(res, 200, body);
}

// GET /models/{version}/card
void get_model_card(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const std::string text = req.matches[1];
  std::optional<ModelVersion> version = context.registry.find(version_number(text));
  if (!version) throw HttpError(404, "unknown model version '" + text + "'");
  const ModelFileInfo info = read_model_info(context.registry.local_file(*version));
  auto card = info.metadata.find("model_card");
  if (card == info.metadata.end())
    throw HttpError(404, version->name() +
                             " has no model card (it was trained before model cards existed, or "
                             "imported from elsewhere)");
  res.status = 200;
  res.set_content(card->second, "text/markdown; charset=utf-8");
}

// POST /models/{version}/activate (admin)
void post_model_activate(ServerContext& context, const httplib::Request& req, httplib::Response& res) {
  const std::string text = req.matches[1];
  const int64_t number = version_number(text);
  if (!context.registry.find(number)) throw HttpError(404, "unknown model version '" + text + "'");
  auto previous = context.registry.active();
  try {
    context.registry.activate(number);
  } catch (const StorageFullError&) {
    throw;  // 507 / 503 from the router
  } catch (const DatabaseBusyError&) {
    throw;
  } catch (const std::exception& error) {
    // The loader's message names the file's path: it goes to the log only.
    std::fprintf(stderr, "[%s] cannot activate v%lld: %s\n", res.get_header_value("X-Request-Id").c_str(),
                 static_cast<long long>(number), error.what());
    throw HttpError(500, "cannot activate v" + std::to_string(number) +
                             ": its model file does not load (details in the server log); the previous "
                             "version keeps serving");
  }
  send_json(res, 200,
            {{"active_version", "v" + std::to_string(number)},
             {"previous_version", previous ? nlohmann::json(previous->name) : nullptr}});
}

}  // namespace

void register_model_routes(Router& router, ServerContext& context) {
  router.get("/models", bind_context(context, get_models));
  router.get("/models/{version}/card", bind_context(context, get_model_card));
  router.post("/models/{version}/activate", bind_context(context, post_model_activate), /*admin=*/true);
}

}  // namespace mriscan
