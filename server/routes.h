// The route groups. Each function registers its routes on the router; each route's handler is one named function
// of the route file that decodes the request, calls a Classifier (infer/classifier.h) or a server component, and
// encodes JSON. The OpenAPI document (server/openapi.json) lists the same routes, and a test checks that the two
// agree.
#pragma once

#include "server/context.h"
#include "server/router.h"

namespace mriscan {

void register_prediction_routes(Router& router, ServerContext& context);  // /predict, /predict_batch, /explain
void register_training_routes(Router& router, ServerContext& context);    // uploads, retrain jobs
void register_model_routes(Router& router, ServerContext& context);       // /models, activation
void register_service_routes(Router& router, ServerContext& context);     // health, metrics, stats, docs, UI
void register_inference_protocol_routes(Router& router, ServerContext& context);  // /v2/... (KServe v2)
void register_audit_routes(Router& router, ServerContext& context);       // /audit, /audit.csv
void register_review_routes(Router& router, ServerContext& context);      // /reviews...

// A route file's handler: a function of the server's context, the request and the response.
using ContextHandler = void (*)(ServerContext& context, const httplib::Request& req, httplib::Response& res);

// `handler` as the router takes it, bound to `context`.
inline Router::Handler bind_context(ServerContext& context, ContextHandler handler) {
  return [&context, handler](const httplib::Request& req, httplib::Response& res) { handler(context, req, res); };
}

}  // namespace mriscan
