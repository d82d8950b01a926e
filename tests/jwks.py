"""An identity provider's key set served over real HTTP, and the keys to sign tokens with."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str) -> "SigningKey":
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> "SigningKey":
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        to_jwk = RSAAlgorithm.to_jwk if self.algorithm == "RS256" else ECAlgorithm.to_jwk
        public: dict[str, Any] = to_jwk(self.private.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        return jwt.encode(
            claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, **header}
        )


@dataclass
class KeySetServer:
    """Serves `keys` as a JWKS document at `url`, counting the fetches."""

    url: str = ""
    keys: list[SigningKey] = field(default_factory=list)
    fetches: int = 0

    def document(self) -> bytes:
        self.fetches += 1
        return json.dumps({"keys": [key.jwk() for key in self.keys]}).encode()


@contextmanager
def key_set_server(*keys: SigningKey) -> Iterator[KeySetServer]:
    served = KeySetServer(keys=list(keys))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.document()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def claims(subject: str = "auth0|ada", lifetime: float = 60, **more: Any) -> dict[str, Any]:
    """A JWT's claims: a subject and an expiry `lifetime` seconds from now, and `more`."""
    return {"sub": subject, "exp": int(time.time() + lifetime), **more}
