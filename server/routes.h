// The route groups. Each function registers its routes on the router; handlers decode the request, call
// the Classifier (infer/) or a server component, and encode JSON. The OpenAPI document (server/openapi.json) lists
// the same routes, and a test checks that the two agree.
#pragma once

#include "server/context.h"
#include "server/router.h"

namespace mriscan {

void register_prediction_routes(Router& router, ServerContext& context);  // /predict, /predict_batch, /explain
void register_training_routes(Router& router, ServerContext& context);    // uploads, retrain jobs
void register_model_routes(Router& router, ServerContext& context);       // /models, activation
void register_service_routes(Router& router, ServerContext& context);     // health, metrics, stats, docs, UI

}  // namespace mriscan
