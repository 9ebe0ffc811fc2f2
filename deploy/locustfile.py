"""Locust load test of a deployed mriscan (deploy/loadtest.sh runs it headless): users post real Testing scans to
/predict with no think time, some with Grad-CAM, and a few probe /health, as a client would. Requests are sent
as multipart bodies built once per scan, so the load generator spends its CPU on sending, not on encoding.

The mix: /predict 17 : /predict?gradcam=1 2 : /health 1 by default; MRISCAN_GRADCAM_WEIGHT=0 sends predictions
only (how the engine's offline images/s compare with what the service delivers). MRISCAN_UPLOAD_WEIGHT=N adds
N parts of /upload_training_data, each a different Training scan (labelled with its folder) until they run out,
with the admin token from $MRISCAN_ADMIN_TOKEN: the requests that write the shared state.

Counted as failures: any status but 200, a 200 without a prediction, and (named "503 shed") the requests the
server shed. p50/p95/p99 are Locust's, per request name and aggregated.
What it is not: a correctness test of the predictions (tests/ and `mriscan eval` are).
"""
import glob
import os
import random

from locust import FastHttpUser, constant, task

SHARED = os.environ.get("MRISCAN_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
SCANS = sorted(glob.glob(os.path.join(SHARED, "data", "brain-tumor-mri", "Testing", "*", "*.jpg")))
if not SCANS:
    raise SystemExit(f"locustfile: no Testing scans under {SHARED}/data/brain-tumor-mri (set MRISCAN_SHARED)")
BOUNDARY = "mriscanlocust"


def multipart(path):
    with open(path, "rb") as f:
        data = f.read()
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def upload_multipart(path):
    with open(path, "rb") as f:
        data = f.read()
    label = os.path.basename(os.path.dirname(path))
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\n{label}\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"scan.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


# Training scans for uploads, in a fixed order, read when sent; shared by the users of this process.
UPLOADS = iter(sorted(glob.glob(os.path.join(SHARED, "data", "brain-tumor-mri", "Training", "*", "*.jpg"))))
UPLOAD_HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                  "Authorization": f"Bearer {os.environ.get('MRISCAN_ADMIN_TOKEN', '')}"}

# 200 scans drawn once (fixed seed): every run sends the same mix of classes and sizes.
BODIES = [multipart(p) for p in random.Random(0).sample(SCANS, min(200, len(SCANS)))]
HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


class Clinician(FastHttpUser):
    wait_time = constant(0)  # no think time: each user sends its next request as soon as the last is answered

    def _predict(self, path, name):
        with self.client.post(path, data=random.choice(BODIES), headers=HEADERS, name=name,
                              catch_response=True) as response:
            if response.status_code == 503:
                response.failure("503 shed")
            elif response.status_code != 200:
                response.failure(f"status {response.status_code}")
            elif b'"predicted_class"' not in response.content:
                response.failure("200 without a prediction")

    @task(17)
    def predict(self):
        self._predict("/predict", "/predict")

    @task(int(os.environ.get("MRISCAN_GRADCAM_WEIGHT", "2")))
    def predict_with_gradcam(self):
        self._predict("/predict?gradcam=1", "/predict?gradcam=1")

    @task(1)
    def health(self):
        with self.client.get("/health", name="/health", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"/health status {response.status_code}")

    @task(int(os.environ.get("MRISCAN_UPLOAD_WEIGHT", "0")))
    def upload(self):
        path = next(UPLOADS, None)
        if path is None:
            return
        with self.client.post("/upload_training_data", data=upload_multipart(path), headers=UPLOAD_HEADERS,
                              name="/upload_training_data", catch_response=True) as response:
            if response.status_code == 503:
                response.failure("503 shed")
            elif response.status_code not in (200, 201):  # 200: a scan stored before (a duplicate)
                response.failure(f"status {response.status_code}")
