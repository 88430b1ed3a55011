import { ApiError, type Image, type ImageKind, type Problem } from '@nqvm/api';

/** `POST /v1/images/upload` as a raw byte stream through XHR, the one browser API with upload progress. */
export function uploadImage(
  file: File,
  meta: { name: string; kind: ImageKind; description?: string },
  onProgress: (sent: number, total: number) => void,
): { promise: Promise<Image>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const qs = new URLSearchParams({
    name: meta.name,
    kind: meta.kind,
    ...(meta.description ? { description: meta.description } : {}),
  });
  const promise = new Promise<Image>((resolve, reject) => {
    xhr.open('POST', `/v1/images/upload?${qs}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(JSON.parse(xhr.responseText) as Image);
      let problem: Problem;
      try {
        problem = JSON.parse(xhr.responseText) as Problem;
      } catch {
        problem = { type: 'about:blank', title: xhr.statusText, status: xhr.status, code: 'http_error' };
      }
      if (xhr.status === 401) window.dispatchEvent(new Event('nqvm:unauthorized'));
      reject(new ApiError(xhr.status, problem));
    };
    xhr.onerror = () => reject(new Error('upload failed: network error'));
    xhr.onabort = () => reject(new Error('upload aborted'));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}
