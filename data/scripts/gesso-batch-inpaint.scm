; Gesso batch example: inpaint (or restyle) every image in a folder, headless.
;
; Load this file and call one of the functions, all in ONE -b argument (each -b runs in a
; fresh Script-Fu interpreter, so a definition does not survive into the next -b):
;
;   gimp-console-3.0 -n -d -f --quit --batch-interpreter=plug-in-script-fu-eval -b '
;     (begin
;       (load "/usr/share/gesso/scripts/gesso-batch-inpaint.scm")
;       (gesso-batch-inpaint "/photos/*.png" "/photos/out" "a stone wall" "" 20
;                            100 80 64 48))'
;
; --quit makes GIMP exit even when a command fails (a failed batch command otherwise leaves
; it running). Each image is loaded, edited, flattened and saved under the same name in the
; output folder, which must exist; the input files are never written.
;
; The area to inpaint: a channel named "gesso-mask" saved in the image (Select ▸ Save to
; Channel, then rename it; XCF keeps it), else the rectangle X Y W H (image pixels).
; MODEL: a .safetensors file, a diffusers folder, a model's name, or "" for the default model.
; Other settings take the procedure's defaults; add #:name value pairs to the calls below
; (names as in the procedure browser, e.g. #:guidance 7.5 #:sampler "dpmpp-2m").
; Written for the v2 dialect that batch mode starts in (results come wrapped in lists).

(define (gesso-batch--basename path)
  (let loop ((i (- (string-length path) 1)))
    (cond ((< i 0) path)
          ((char=? (string-ref path i) #\/) (substring path (+ i 1) (string-length path)))
          (else (loop (- i 1))))))

; The channel named NAME in IMG, or #f.
(define (gesso-batch--channel img name)
  (let loop ((channels (vector->list (car (gimp-image-get-channels img)))))
    (cond ((null? channels) #f)
          ((string=? (car (gimp-item-get-name (car channels))) name) (car channels))
          (else (loop (cdr channels))))))

; Runs EDIT (a procedure of image and drawable) on every file matching PATTERN and saves the
; flattened result in OUT-DIR. Returns the number of images written.
(define (gesso-batch--each pattern out-dir edit)
  (let loop ((files (car (file-glob #:pattern pattern #:filename-encoding FALSE)))
             (count 0))
    (if (null? files)
        (begin
          (gimp-message (string-append "gesso-batch: " (number->string count)
                                       " image(s) written to " out-dir))
          count)
        (let* ((in (car files))
               (img (car (gimp-file-load RUN-NONINTERACTIVE in)))
               (drawable (vector-ref (car (gimp-image-get-layers img)) 0))
               (out (string-append out-dir "/" (gesso-batch--basename in))))
          (edit img drawable)
          (gimp-image-flatten img)
          (gimp-file-save RUN-NONINTERACTIVE img out -1)
          (gimp-image-delete img)
          (loop (cdr files) (+ count 1))))))

; Inpaint the saved "gesso-mask" channel (else the rectangle X Y W H) of every image.
(define (gesso-batch-inpaint pattern out-dir prompt model steps x y w h)
  (gesso-batch--each pattern out-dir
    (lambda (img drawable)
      (let ((mask (gesso-batch--channel img "gesso-mask")))
        (if mask
            (gimp-image-select-item img CHANNEL-OP-REPLACE mask)
            (gimp-image-select-rectangle img CHANNEL-OP-REPLACE x y w h))
        (plug-in-gesso-inpaint #:run-mode RUN-NONINTERACTIVE
                               #:image img
                               #:drawables (vector drawable)
                               #:prompt prompt
                               #:model model
                               #:steps steps)))))

; Restyle every image as a whole: SOURCE-PROMPT says what the pictures show, PROMPT what
; they should become, STRENGTH (0..1) how far they may move.
(define (gesso-batch-restyle pattern out-dir prompt source-prompt model steps strength)
  (gesso-batch--each pattern out-dir
    (lambda (img drawable)
      (gimp-selection-none img)
      (plug-in-gesso-restyle #:run-mode RUN-NONINTERACTIVE
                             #:image img
                             #:drawables (vector drawable)
                             #:prompt prompt
                             #:source-prompt source-prompt
                             #:model model
                             #:steps steps
                             #:strength strength))))
